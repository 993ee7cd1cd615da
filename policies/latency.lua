-- Latency-driven policy with a cooldown (function form).
--
-- Scale out when the p95 response time over the last interval is above
-- the SLO, or when the error rate is; scale in only when p95 has been well
-- below the SLO for the whole of the last 3 minutes and per-pod load would
-- still fit on one pod fewer. After any change, hold for `cooldown`
-- seconds so that the new pods' effect shows before the next decision.

local SLO_MS = 150        -- p95 target, milliseconds
local MAX_ERRORS = 0.01   -- error rate that counts as overload
local COOLDOWN = 120      -- seconds to hold after a change
local QPS_PER_POD = 40    -- what one pod serves comfortably

state.last_change = state.last_change or -math.huge

function decide(m)
  if m.now - state.last_change < COOLDOWN then
    return nil -- cooling down
  end
  local p95 = m.p95
  local errors = m.error_rate or 0
  if (p95 and p95 > SLO_MS) or errors > MAX_ERRORS then
    -- Add pods in proportion to how far past the SLO it is, at least one.
    local over = p95 and p95 / SLO_MS or 1.5
    local step = math.max(1, math.floor(m.replicas * (over - 1) + 0.5))
    state.last_change = m.now
    log(string.format("p95 %.0f ms, errors %.2f%% over %ds: adding %d",
      p95 or -1, errors * 100, m.interval, step))
    return m.replicas + step
  end
  local p95_window = get_latency(95, 180)
  local qps = m.qps or 0
  if m.replicas > m.min and p95_window and p95_window < SLO_MS / 2
      and qps / (m.replicas - 1) < QPS_PER_POD then
    state.last_change = m.now
    log(string.format("p95 %.0f ms over 3m and %.1f QPS fit on %d pods: removing one",
      p95_window, qps, m.replicas - 1))
    return m.replicas - 1
  end
  return nil
end
