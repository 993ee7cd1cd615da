-- No scale-in within N minutes (params.minutes, default 5) of a scale-out:
-- a policy without hysteresis or a cooldown flaps, adding pods and taking
-- them away again before they could show their effect.

local window = (params.minutes or 5) * 60
local last_out = nil
local worst = nil -- the shortest scale-out → scale-in gap seen

for _, e in ipairs(events) do
  if e.rescale and e.from and e.to then
    if e.to > e.from then
      last_out = e.t
    elseif e.to < e.from and last_out then
      local gap = e.t - last_out
      if not worst or gap < worst then
        worst = gap
      end
    end
  end
end

local function mmss(s)
  return string.format("%dm%02ds", math.floor(s / 60), math.floor(s % 60))
end

local bound = "no scale-in within " .. mmss(window) .. " of a scale-out"
if worst == nil then
  return { pass = true, bound = bound, message = "no scale-in after a scale-out", value = "none" }
end
return {
  pass = worst >= window,
  bound = bound,
  message = "shortest scale-out to scale-in gap",
  value = mmss(worst),
}
