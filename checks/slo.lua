-- An SLO over the run: the share of samples (while load was offered) whose
-- p99 response time was within params.p99_ms (default 500) must be at
-- least params.target (default 0.95), and errors under params.errors
-- (default 0.01) of completed requests.

local p99_ms = params.p99_ms or 500
local target = params.target or 0.95
local max_errors = params.errors or 0.01

local good, total, completed, errors = 0, 0, 0, 0
for _, s in ipairs(samples) do
  completed = completed + s.completed
  errors = errors + s.errors
  if s.offered_qps > 0 and s.completed > 0 then
    total = total + 1
    if s.latency_ms.p99 <= p99_ms then
      good = good + 1
    end
  end
end

local share = total > 0 and good / total or 1
local error_rate = completed > 0 and errors / completed or 0
return {
  pass = share >= target and error_rate < max_errors,
  bound = string.format("p99 <= %g ms in %g%% of samples, errors < %g%%",
    p99_ms, target * 100, max_errors * 100),
  value = string.format("%.1f%%", share * 100),
  message = string.format("of samples within p99, errors %.3f%%", error_rate * 100),
}
