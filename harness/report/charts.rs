//! Time-series charts as inline SVG, drawn with plotters.
//!
//! One small engine (`TimeChart`) draws every chart so they share the look, the
//! time axis (experiment `m:ss`) and the rescale / load-stop markers. Tick
//! positions are computed here rather than by plotters so time ticks fall on
//! whole minutes and the log axis on 1-2-5 values. Legends are rendered in HTML
//! (see `html.rs`) because plotters' in-plot legend hides data on busy charts.

use std::collections::BTreeMap;

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::recorder::RunData;

use super::{firings, hpa_range_runs, interval_s, mmss, num, rescales, x_max_s, FiringState};

pub(super) const FONT: &str = "sans-serif";
const GRID: RGBColor = RGBColor(232, 234, 238);
const AXIS: RGBColor = RGBColor(156, 163, 175);
const TEXT: RGBColor = RGBColor(75, 85, 99);
const SHADE: RGBColor = RGBColor(243, 244, 246);
pub(super) const MARK: RGBColor = RGBColor(5, 150, 105);
pub(super) const TARGET: RGBColor = RGBColor(220, 38, 38);

/// Distinct, print-safe colours for per-pod lines (Tableau 10).
pub(super) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(127, 127, 127),
    RGBColor(214, 39, 40),
];

pub(super) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stroke {
    Solid,
    Dashed,
    Step,
    StepDashed,
}

impl Stroke {
    pub fn dashed(self) -> bool {
        matches!(self, Stroke::Dashed | Stroke::StepDashed)
    }
    fn step(self) -> bool {
        matches!(self, Stroke::Step | Stroke::StepDashed)
    }
}

/// One line: `(experiment seconds, value)`; non-finite values are gaps.
#[derive(Debug, Clone)]
pub(super) struct Series {
    pub label: String,
    pub color: RGBColor,
    pub stroke: Stroke,
    pub width: u32,
    pub points: Vec<(f64, f64)>,
    /// Drawn against the right-hand axis.
    pub secondary: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, color: RGBColor, stroke: Stroke) -> Self {
        Series {
            label: label.into(),
            color,
            stroke,
            width: 2,
            points: vec![],
            secondary: false,
        }
    }
    pub(super) fn width(mut self, w: u32) -> Self {
        self.width = w;
        self
    }
    pub(super) fn points(mut self, p: Vec<(f64, f64)>) -> Self {
        self.points = p;
        self
    }
    pub(super) fn on_right(mut self) -> Self {
        self.secondary = true;
        self
    }
}

/// A horizontal reference line (an HPA target), labelled at its right end.
#[derive(Debug, Clone)]
pub(super) struct HLine {
    pub y: f64,
    pub label: String,
    pub color: RGBColor,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scale {
    Linear,
    /// Log10; non-positive values are gaps.
    Log,
    /// Whole numbers (pods).
    Count,
}

#[derive(Debug, Clone)]
pub(super) struct Axis {
    pub desc: String,
    pub scale: Scale,
    /// Appended to tick labels, e.g. `%` or ` ms`.
    pub unit: &'static str,
}

impl Axis {
    pub fn new(desc: impl Into<String>, scale: Scale, unit: &'static str) -> Self {
        Axis {
            desc: desc.into(),
            scale,
            unit,
        }
    }

    /// Data value to axis coordinate.
    fn tf(&self, v: f64) -> Option<f64> {
        match self.scale {
            Scale::Log if v > 0.0 && v.is_finite() => Some(v.log10()),
            Scale::Log => None,
            _ if v.is_finite() => Some(v),
            _ => None,
        }
    }

    /// Range and ticks in axis coordinates for the given (transformed) values.
    fn range(&self, vals: &[f64]) -> (f64, f64, Vec<f64>) {
        let max = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        match self.scale {
            Scale::Linear => {
                let top = if max.is_finite() && max > 0.0 {
                    max * 1.08
                } else {
                    1.0
                };
                let step = nice_step(top / 5.0);
                let hi = (top / step).ceil() * step;
                (0.0, hi, ticks(0.0, hi, step))
            }
            Scale::Count => {
                let top = if max.is_finite() { max + 1.0 } else { 0.0 }.max(2.0);
                // Whole-number steps only: 2.5 would put ticks between counts.
                let step = match nice_step(top / 6.0) {
                    s if s <= 1.0 => 1.0,
                    2.5 => 2.0,
                    s => s,
                };
                let hi = (top / step).ceil() * step;
                (0.0, hi, ticks(0.0, hi, step))
            }
            Scale::Log => {
                let min = vals.iter().copied().fold(f64::INFINITY, f64::min);
                if !min.is_finite() || !max.is_finite() {
                    return (0.0, 1.0, vec![0.0, 2f64.log10(), 5f64.log10(), 1.0]);
                }
                let lo = min.floor().min(max - 1.0).floor();
                let hi = (max + 0.18).max(lo + 1.0);
                let mut t = vec![];
                let mut k = lo as i32;
                while (k as f64) <= hi {
                    for m in [1.0f64, 2.0, 5.0] {
                        let v = k as f64 + m.log10();
                        if v >= lo - 1e-9 && v <= hi + 1e-9 {
                            t.push(v);
                        }
                    }
                    k += 1;
                }
                if t.len() > 10 {
                    t.retain(|v| (v - v.round()).abs() < 1e-9);
                }
                (lo, hi, t)
            }
        }
    }

    fn label(&self, v: f64) -> String {
        match self.scale {
            Scale::Log => {
                let x = 10f64.powf(v);
                if self.unit == " ms" && x >= 1000.0 {
                    format!("{} s", num(x / 1000.0, 2))
                } else {
                    format!("{}{}", num(x, 3), self.unit)
                }
            }
            _ => format!("{}{}", num(v, 2), self.unit),
        }
    }
}

fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let m = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .find(|m| *m >= f - 1e-9)
        .unwrap_or(10.0);
    m * mag
}

fn ticks(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let n = ((hi - lo) / step).round() as usize;
    (0..=n.min(1000)).map(|i| lo + i as f64 * step).collect()
}

/// Ticks on whole seconds/minutes so `m:ss` labels read cleanly; at most
/// `max_n` of them (narrow charts with `h:mm:ss` labels take fewer).
fn time_ticks(x_max: f64, max_n: f64) -> Vec<f64> {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        10800.0, 21600.0,
    ];
    let step = STEPS
        .into_iter()
        .find(|s| x_max / s <= max_n)
        .unwrap_or(x_max / max_n);
    ticks(0.0, (x_max / step).floor() * step, step)
}

/// Splits a line at gaps (non-finite values or missing samples) so absent data
/// is not drawn as a straight line across the hole.
fn segments(points: &[(f64, f64)], max_gap: f64) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = vec![];
    let mut cur: Vec<(f64, f64)> = vec![];
    for &(t, v) in points {
        if !t.is_finite() || !v.is_finite() {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            continue;
        }
        if let Some(&(pt, _)) = cur.last() {
            if t - pt > max_gap {
                out.push(std::mem::take(&mut cur));
            }
        }
        cur.push((t, v));
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// A value holds from its sample until the next one (pod counts change in steps).
fn stepped(seg: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(seg.len() * 2);
    for (i, &(t, v)) in seg.iter().enumerate() {
        if i > 0 {
            out.push((t, seg[i - 1].1));
        }
        out.push((t, v));
    }
    out
}

/// A chart over experiment time.
#[derive(Debug, Clone)]
pub(super) struct TimeChart {
    pub width: u32,
    pub height: u32,
    pub x_max: f64,
    /// Largest gap between samples still drawn as a connected line.
    pub max_gap: f64,
    pub y: Axis,
    pub y2: Option<Axis>,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
    /// Vertical markers: (experiment seconds, label).
    pub marks: Vec<(f64, String)>,
    /// Shaded from this time to the end, with a label (load stopped).
    pub shade_from: Option<(f64, String)>,
    /// A value range over time, shaded under the lines (the HPA's min..max).
    pub band: Option<Band>,
    /// A schedule's firings: vertical markers apart from the rescale ones.
    pub firings: Vec<FiringMark>,
}

/// A shaded range on one axis: runs of (from, to, low, high).
#[derive(Debug, Clone)]
pub(super) struct Band {
    pub label: String,
    pub color: RGBColor,
    pub runs: Vec<(f64, f64, f64, f64)>,
    /// Drawn against the right-hand axis.
    pub secondary: bool,
}

/// One firing of a scheduled job.
#[derive(Debug, Clone)]
pub(super) struct FiringMark {
    pub t: f64,
    pub label: String,
    pub state: FiringState,
}

pub(super) const CRON: RGBColor = RGBColor(190, 24, 93);
/// The page's warning colour (`--warn`, a shade lighter to read as a line).
pub(super) const CRON_FAILED: RGBColor = RGBColor(180, 83, 9);

/// How a firing is drawn: colour, line opacity, dash (on, off; none when solid).
pub(super) fn firing_style(state: FiringState) -> (RGBColor, f64, Option<(u32, u32)>) {
    match state {
        FiringState::Changed => (CRON, 0.9, None),
        // Lighter and dotted: it ran, but nothing moved.
        FiringState::Skipped => (CRON, 0.4, Some((2, 3))),
        FiringState::Failed => (CRON_FAILED, 0.9, Some((6, 3))),
    }
}

/// Rows along the top edge that firing labels may use (the rescale labels' four
/// rows minus one, so a run of firings cannot bury the data under text).
const FIRING_ROWS: usize = 3;

/// Pixels between two labels of the same job.
const REPEAT_PX: i32 = 200;

/// The first of `rows` label rows where `[x, x + w)` overlaps nothing placed.
fn free_row(placed: &[(i32, i32, usize)], x: i32, w: i32, rows: usize) -> Option<usize> {
    (0..rows).find(|r| {
        !placed
            .iter()
            .any(|&(a, b, pr)| pr == *r && x < b && x + w > a)
    })
}

/// `c` at opacity `a` over white, as a solid colour (text has no opacity in plotters' SVG).
pub(super) fn lighten(c: RGBColor, a: f64) -> RGBColor {
    let f = |v: u8| (v as f64 * a + 255.0 * (1.0 - a)).round() as u8;
    RGBColor(f(c.0), f(c.1), f(c.2))
}

fn font(size: f64, c: RGBColor) -> TextStyle<'static> {
    font_styled(size, c, FontStyle::Normal)
}

fn font_styled(size: f64, c: RGBColor, style: FontStyle) -> TextStyle<'static> {
    TextStyle {
        font: FontDesc::new(FontFamily::Name(FONT), size, style),
        color: c.to_backend_color(),
        pos: Pos::new(HPos::Left, VPos::Top),
    }
}

/// A linear f64 axis whose ticks are given. plotters' own `WithKeyPoints` over
/// f64 loses the value formatter `configure_mesh` needs; this one uses the
/// default formatting, which our label formatters replace anyway.
#[derive(Debug, Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span.is_nan() || span <= 0.0 || !v.is_finite() {
            return limit.0;
        }
        limit.0 + ((v - self.lo) / span * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        // No light (minor) grid lines: the bold ones at our ticks are enough.
        if hint.weight().allow_light_points() {
            vec![]
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

fn ticked(lo: f64, hi: f64, ticks: Vec<f64>) -> Ticked {
    Ticked { lo, hi, ticks }
}

impl TimeChart {
    pub fn new(run: &RunData, width: u32, height: u32, y: Axis) -> Self {
        TimeChart {
            width,
            height,
            x_max: x_max_s(run),
            max_gap: interval_s(run) * 2.5,
            y,
            y2: None,
            series: vec![],
            hlines: vec![],
            marks: vec![],
            shade_from: None,
            band: None,
            firings: vec![],
        }
    }

    /// Adds the markers every time chart shares: HPA rescales and load stop.
    pub fn with_context(mut self, run: &RunData) -> Self {
        self.marks = rescales(run)
            .iter()
            .filter(|r| r.t.is_finite())
            .map(|r| {
                let label = r.to.map(|n| format!("→{n}")).unwrap_or_else(|| "→?".into());
                (r.t, label)
            })
            .collect();
        let stop = run.meta.load_stop_s;
        if stop.is_finite() && stop > 0.0 && stop < self.x_max {
            self.shade_from = Some((stop, "load stopped".into()));
        }
        self
    }

    pub fn draw(&self) -> anyhow::Result<String> {
        let mut svg = String::new();
        self.draw_into(&mut svg)?;
        Ok(svg)
    }

    fn draw_into(&self, svg: &mut String) -> anyhow::Result<()> {
        let root = SVGBackend::with_string(svg, (self.width, self.height)).into_drawing_area();
        root.fill(&WHITE)?;

        let x_max = if self.x_max.is_finite() && self.x_max > 0.0 {
            self.x_max
        } else {
            10.0
        };
        let vals = |secondary: bool, axis: &Axis| -> Vec<f64> {
            let mut v: Vec<f64> = self
                .series
                .iter()
                .filter(|s| s.secondary == secondary)
                .flat_map(|s| s.points.iter().filter_map(|p| axis.tf(p.1)))
                .collect();
            if !secondary {
                v.extend(self.hlines.iter().filter_map(|h| axis.tf(h.y)));
            }
            v
        };
        // The band's floor always fits; its ceiling only when it would not
        // squash the lines (an HPA allowed 100 pods running 3): above that
        // the band runs off the top, which reads as "higher still".
        let with_band = |secondary: bool, axis: &Axis, mut v: Vec<f64>| -> Vec<f64> {
            let Some(b) = self.band.as_ref().filter(|b| b.secondary == secondary) else {
                return v;
            };
            let top = v.iter().copied().fold(0.0, f64::max);
            let lows: Vec<f64> = b.runs.iter().filter_map(|r| axis.tf(r.2)).collect();
            let cap = 2.0 * lows.iter().copied().fold(top, f64::max) + 2.0;
            let highs = b
                .runs
                .iter()
                .filter_map(|r| axis.tf(r.3))
                .filter(|h| *h <= cap);
            v.extend(lows.iter().copied().chain(highs.collect::<Vec<_>>()));
            v
        };
        let (y_lo, y_hi, y_ticks) = self
            .y
            .range(&with_band(false, &self.y, vals(false, &self.y)));
        let y2 = self
            .y2
            .as_ref()
            .map(|a| (a, a.range(&with_band(true, a, vals(true, a)))));

        let mut builder = ChartBuilder::on(&root);
        builder
            .margin_top(14)
            .margin_left(6)
            .margin_bottom(4)
            .margin_right(if y2.is_some() { 6 } else { 24 })
            .x_label_area_size(48)
            .y_label_area_size(72);
        if y2.is_some() {
            builder.right_y_label_area_size(60);
        }
        // About 90 px per label (`h:mm:ss` is wider than `m:ss`).
        let label_px = if x_max >= 3600.0 { 90.0 } else { 60.0 };
        let x_ticks = time_ticks(x_max, (self.width as f64 / label_px).clamp(4.0, 12.0));
        let (y2_lo, y2_hi, y2_ticks) =
            y2.as_ref()
                .map(|(_, r)| r.clone())
                .unwrap_or((0.0, 1.0, vec![]));
        let mut chart = builder
            .build_cartesian_2d(
                ticked(0.0, x_max, x_ticks.clone()),
                ticked(y_lo, y_hi, y_ticks),
            )?
            .set_secondary_coord(ticked(0.0, x_max, x_ticks), ticked(y2_lo, y2_hi, y2_ticks));

        let xfmt = |v: &f64| mmss(*v);
        let yfmt = |v: &f64| self.y.label(*v);
        chart
            .configure_mesh()
            .x_desc(if x_max >= 3600.0 {
                "experiment time (h:mm:ss)"
            } else {
                "experiment time (m:ss)"
            })
            .y_desc(self.y.desc.as_str())
            .x_label_formatter(&xfmt)
            .y_label_formatter(&yfmt)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .axis_style(AXIS)
            .set_all_tick_mark_size(4)
            .label_style(font(15.0, TEXT))
            .axis_desc_style(font(16.0, TEXT))
            .draw()?;
        if let Some((axis, _)) = &y2 {
            let y2fmt = |v: &f64| axis.label(*v);
            chart
                .configure_secondary_axes()
                .y_desc(axis.desc.as_str())
                .y_label_formatter(&y2fmt)
                .axis_style(AXIS)
                .label_style(font(15.0, TEXT))
                .axis_desc_style(font(16.0, TEXT))
                .draw()?;
        }

        // Labels along the top edge, stacked into rows so neighbours don't overlap.
        let mut placed: Vec<(i32, i32, usize)> = vec![];
        let mut place = |x: i32, text: &str| -> usize {
            let w = (text.chars().count() as f64 * 7.2) as i32 + 8;
            let row = free_row(&placed, x, w, 4).unwrap_or(3);
            placed.push((x, x + w, row));
            row
        };
        let row_h = 17;

        if let Some((t0, label)) = &self.shade_from {
            chart.draw_series(std::iter::once(Rectangle::new(
                [(*t0, y_lo), (x_max, y_hi)],
                SHADE.filled(),
            )))?;
            // Narrow charts leave the shade to the legend: the label would crowd the markers.
            if self.width >= 800 {
                let (px, _) = chart.backend_coord(&(*t0, y_hi));
                let row = place(px, label);
                chart.draw_series(std::iter::once(
                    EmptyElement::at((*t0, y_hi))
                        + Text::new(label.clone(), (5, 4 + row as i32 * row_h), font(14.0, TEXT)),
                ))?;
            }
        }

        // Secondary values are mapped into primary coordinates so one set of
        // drawing calls serves both axes; the secondary coord only draws its axis.
        let to_primary = |v: f64| -> f64 {
            if y2_hi > y2_lo {
                y_lo + (v - y2_lo) / (y2_hi - y2_lo) * (y_hi - y_lo)
            } else {
                v
            }
        };

        // Under everything but the load-stop shade, so every line stays on top.
        if let Some(b) = &self.band {
            let axis = match (&y2, b.secondary) {
                (Some((a, _)), true) => *a,
                _ => &self.y,
            };
            let y = |v: f64| {
                axis.tf(v)
                    .map(|y| {
                        if b.secondary && y2.is_some() {
                            to_primary(y)
                        } else {
                            y
                        }
                    })
                    .map(|y| y.clamp(y_lo, y_hi))
            };
            for &(t0, t1, lo, hi) in &b.runs {
                let (t0, t1) = (t0.clamp(0.0, x_max), t1.clamp(0.0, x_max));
                let (Some(lo), Some(hi)) = (y(lo), y(hi)) else {
                    continue;
                };
                if t1 <= t0 {
                    continue;
                }
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(t0, lo), (t1, hi)],
                    b.color.mix(0.13).filled(),
                )))?;
                // Thin edges so a band one pod high still reads as a range.
                for v in [lo, hi] {
                    chart.draw_series(LineSeries::new(
                        [(t0, v), (t1, v)],
                        b.color.mix(0.45).stroke_width(1),
                    ))?;
                }
            }
        }

        // Firings: one line per pixel column (the most telling state wins);
        // when they come closer than a few pixels apart on average, full
        // height lines would paint the chart over, so they become short
        // ticks along the bottom edge, unlabelled.
        let (plot_x, _) = chart.plotting_area().get_pixel_range();
        let plot_w = (plot_x.end - plot_x.start).max(1);
        let mut cols: BTreeMap<i32, &FiringMark> = BTreeMap::new();
        for f in self.firings.iter().filter(|f| (0.0..=x_max).contains(&f.t)) {
            let (px, _) = chart.backend_coord(&(f.t, y_hi));
            let rank = |s: FiringState| match s {
                FiringState::Failed => 2,
                FiringState::Changed => 1,
                FiringState::Skipped => 0,
            };
            let e = cols.entry(px).or_insert(f);
            if rank(f.state) > rank(e.state) {
                *e = f;
            }
        }
        let dense = cols.len() as i32 * 4 > plot_w;
        let tick = (y_hi - y_lo) * 14.0 / (self.height as f64 - 66.0).max(1.0);
        for f in cols.values() {
            let (color, alpha, dash) = firing_style(f.state);
            let (top, width) = if dense {
                (y_lo + tick, 1)
            } else {
                (
                    y_hi,
                    if f.state == FiringState::Skipped {
                        1
                    } else {
                        2
                    },
                )
            };
            let style = color.mix(alpha).stroke_width(width);
            let line = [(f.t, y_lo), (f.t, top)];
            match dash {
                Some((on, off)) if !dense => {
                    chart.draw_series(DashedLineSeries::new(line, on, off, style))?
                }
                _ => chart.draw_series(LineSeries::new(line, style))?,
            };
        }

        for (t, label) in &self.marks {
            if !(0.0..=x_max).contains(t) {
                continue;
            }
            chart.draw_series(DashedLineSeries::new(
                [(*t, y_lo), (*t, y_hi)],
                3,
                3,
                MARK.mix(0.8).stroke_width(1),
            ))?;
            let (px, _) = chart.backend_coord(&(*t, y_hi));
            let row = place(px, label);
            chart.draw_series(std::iter::once(
                EmptyElement::at((*t, y_hi))
                    + Text::new(
                        label.clone(),
                        (4, 4 + row as i32 * row_h),
                        font_styled(15.0, MARK, FontStyle::Bold),
                    ),
            ))?;
        }

        // Firing labels take the rows the rescale labels left free; one that
        // fits in none is left out (the Schedule section lists every firing).
        if !dense {
            // Failed and changed firings are labelled first, so skipped ones
            // cannot crowd them out; a job that fires often is named once per
            // stretch of the axis, not at every line.
            let mut order: Vec<&FiringMark> = cols.values().copied().collect();
            order.sort_by_key(|f| f.state == FiringState::Skipped);
            let mut named: Vec<(i32, &str)> = vec![];
            for f in order {
                let (color, _, _) = firing_style(f.state);
                let (px, _) = chart.backend_coord(&(f.t, y_hi));
                if named
                    .iter()
                    .any(|&(x, l)| l == f.label && (px - x).abs() < REPEAT_PX)
                {
                    continue;
                }
                let w = (f.label.chars().count() as f64 * 7.2) as i32 + 8;
                // Near the right edge the label goes to the left of its line.
                let left = px + w > plot_x.end;
                let x0 = if left { px - w } else { px };
                let Some(row) = free_row(&placed, x0, w, FIRING_ROWS) else {
                    continue;
                };
                placed.push((x0, x0 + w, row));
                named.push((px, &f.label));
                let y = 4 + row as i32 * row_h;
                let (dx, hpos) = if left {
                    (-4, HPos::Right)
                } else {
                    (4, HPos::Left)
                };
                let bx = if left { (-w, -1) } else { (1, w) };
                let text_style = if f.state == FiringState::Skipped {
                    font(14.0, lighten(color, 0.7))
                } else {
                    font_styled(14.0, color, FontStyle::Bold)
                };
                chart.draw_series(std::iter::once(
                    EmptyElement::at((f.t, y_hi))
                        + Rectangle::new([(bx.0, y - 1), (bx.1, y + 16)], WHITE.mix(0.85).filled())
                        + Text::new(
                            f.label.clone(),
                            (dx, y),
                            text_style.pos(Pos::new(hpos, VPos::Top)),
                        ),
                ))?;
            }
        }

        for h in &self.hlines {
            let Some(y) = self.y.tf(h.y) else { continue };
            chart.draw_series(DashedLineSeries::new(
                [(0.0, y), (x_max, y)],
                8,
                5,
                h.color.stroke_width(2),
            ))?;
            // A translucent backing keeps the label readable over lines and markers.
            let w = (h.label.chars().count() as f64 * 6.9) as i32 + 8;
            chart.draw_series(std::iter::once(
                EmptyElement::at((x_max, y))
                    + Rectangle::new([(-w - 2, -21), (-2, -3)], WHITE.mix(0.85).filled())
                    + Text::new(
                        h.label.clone(),
                        (-6, -5),
                        font(14.0, h.color).pos(Pos::new(HPos::Right, VPos::Bottom)),
                    ),
            ))?;
        }

        for s in &self.series {
            let axis = if s.secondary {
                y2.as_ref().map(|(a, _)| *a).unwrap_or(&self.y)
            } else {
                &self.y
            };
            let pts: Vec<(f64, f64)> = s
                .points
                .iter()
                .map(|&(t, v)| {
                    let y = axis
                        .tf(v)
                        .map(|y| if s.secondary { to_primary(y) } else { y });
                    (t, y.map(|y| y.clamp(y_lo, y_hi)).unwrap_or(f64::NAN))
                })
                .filter(|(t, _)| (0.0..=x_max).contains(t))
                .collect();
            let style = s.color.stroke_width(s.width);
            for seg in segments(&pts, self.max_gap) {
                if seg.len() == 1 {
                    // A lone point would draw nothing as a line.
                    chart.draw_series(std::iter::once(Circle::new(seg[0], 3, s.color.filled())))?;
                    continue;
                }
                let seg = if s.stroke.step() { stepped(&seg) } else { seg };
                if s.stroke.dashed() {
                    chart.draw_series(DashedLineSeries::new(seg, 7, 5, style))?;
                } else {
                    chart.draw_series(LineSeries::new(seg, style))?;
                }
            }
        }
        root.present()?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The report's charts.

pub(super) const W: u32 = 1120;

pub(super) const OFFERED: RGBColor = RGBColor(75, 85, 99);
pub(super) const ACHIEVED: RGBColor = RGBColor(37, 99, 235);
pub(super) const READY: RGBColor = RGBColor(234, 88, 12);
pub(super) const DESIRED: RGBColor = RGBColor(147, 51, 234);

/// Fig. 7: offered and achieved QPS (left), ready and desired pods (right).
pub(super) fn qps_and_pods(run: &RunData) -> TimeChart {
    let iv = interval_s(run);
    let mut c =
        TimeChart::new(run, W, 470, Axis::new("requests / s", Scale::Linear, "")).with_context(run);
    c.y2 = Some(Axis::new("pods", Scale::Count, ""));
    let col = |f: &dyn Fn(&crate::recorder::Sample) -> f64| -> Vec<(f64, f64)> {
        run.samples.iter().map(|s| (s.t, f(s))).collect()
    };
    // Dashed lines are drawn after the solid ones they often coincide with,
    // so both stay visible.
    c.series = vec![
        Series::new("achieved QPS", ACHIEVED, Stroke::Solid)
            .width(1)
            .points(col(&|s| s.completed as f64 / iv)),
        Series::new("offered QPS", OFFERED, Stroke::Dashed).points(col(&|s| s.offered_qps)),
        Series::new("ready pods", READY, Stroke::Step)
            .width(3)
            .on_right()
            .points(col(&|s| s.replicas.ready as f64)),
        Series::new(
            format!("desired pods ({})", super::scaler_word(run)),
            DESIRED,
            Stroke::StepDashed,
        )
        .on_right()
        .points(col(&|s| s.replicas.desired as f64)),
    ];
    // Only a run with a schedule gets the range and the firings: elsewhere
    // the range is fixed and the header already gives it.
    let runs = hpa_range_runs(run);
    if !runs.is_empty() {
        c.band = Some(Band {
            label: "HPA range (min–max)".into(),
            color: DESIRED,
            runs: runs
                .into_iter()
                .map(|(t0, t1, lo, hi)| (t0, t1, lo as f64, hi as f64))
                .collect(),
            secondary: true,
        });
    }
    c.firings = firings(run)
        .iter()
        .filter(|f| f.t.is_finite())
        .map(|f| {
            let label = match (&f.job, f.state) {
                (Some(job), FiringState::Failed) => format!("{job} ✗"),
                (Some(job), _) => job.clone(),
                (None, FiringState::Failed) => "failed ✗".into(),
                (None, _) => "?".into(),
            };
            FiringMark {
                t: f.t,
                label,
                state: f.state,
            }
        })
        .collect();
    c
}

/// Per-pod values keyed by pod name, in order of first appearance.
fn per_pod(
    run: &RunData,
    f: impl Fn(&crate::recorder::PodSample) -> Option<f64>,
) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut order: Vec<String> = vec![];
    let mut by: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for s in &run.samples {
        for p in &s.pods {
            let Some(v) = f(p) else { continue };
            if !by.contains_key(&p.name) {
                order.push(p.name.clone());
            }
            by.entry(p.name.clone()).or_default().push((s.t, v));
        }
    }
    order
        .into_iter()
        .map(|n| {
            let v = by.remove(&n).unwrap_or_default();
            (n, v)
        })
        .collect()
}

/// The last finite target of the first HPA metric matching `pick`, with its name.
pub(super) fn hpa_target(
    run: &RunData,
    pick: impl Fn(&crate::recorder::MetricSample) -> bool,
) -> Option<(String, f64)> {
    run.samples.iter().rev().find_map(|s| {
        s.hpa
            .as_ref()?
            .metrics
            .iter()
            .find(|m| pick(m) && m.target.is_finite())
            .map(|m| (m.name.clone(), m.target))
    })
}

pub(super) fn is_cpu_metric(m: &crate::recorder::MetricSample) -> bool {
    m.unit == "%"
}

pub(super) fn is_qps_metric(m: &crate::recorder::MetricSample) -> bool {
    m.name.contains("pods metric") || m.name.contains("external metric")
}

/// Pod colours by first appearance, shared by both Fig. 8 charts.
pub(super) fn pod_colors(run: &RunData) -> BTreeMap<String, RGBColor> {
    let mut m = BTreeMap::new();
    for s in &run.samples {
        for p in &s.pods {
            let n = m.len();
            m.entry(p.name.clone())
                .or_insert(PALETTE[n % PALETTE.len()]);
        }
    }
    m
}

/// Fig. 8a: CPU utilization per pod against the HPA's CPU target.
pub(super) fn pod_cpu(run: &RunData) -> Option<TimeChart> {
    let lines = per_pod(run, |p| p.cpu_utilization);
    if lines.is_empty() {
        return None;
    }
    let colors = pod_colors(run);
    let mut c = TimeChart::new(
        run,
        W,
        360,
        Axis::new("CPU, % of request", Scale::Linear, "%"),
    )
    .with_context(run);
    c.series = lines
        .into_iter()
        .map(|(name, pts)| {
            let color = colors.get(&name).copied().unwrap_or(PALETTE[0]);
            Series::new(name, color, Stroke::Solid).width(1).points(pts)
        })
        .collect();
    if let Some((_, t)) = hpa_target(run, is_cpu_metric) {
        c.hlines.push(HLine {
            y: t,
            label: format!("HPA target {}%", num(t, 1)),
            color: TARGET,
        });
    }
    Some(c)
}

/// Fig. 8b: requests per second per pod against the HPA's per-pod QPS target.
pub(super) fn pod_qps(run: &RunData) -> Option<TimeChart> {
    let lines = per_pod(run, |p| Some(p.qps));
    if lines.is_empty() {
        return None;
    }
    let colors = pod_colors(run);
    let mut c = TimeChart::new(
        run,
        W,
        360,
        Axis::new("requests / s per pod", Scale::Linear, ""),
    )
    .with_context(run);
    c.series = lines
        .into_iter()
        .map(|(name, pts)| {
            let color = colors.get(&name).copied().unwrap_or(PALETTE[0]);
            Series::new(name, color, Stroke::Solid).width(1).points(pts)
        })
        .collect();
    if let Some((name, t)) = hpa_target(run, is_qps_metric) {
        c.hlines.push(HLine {
            y: t,
            label: format!("target {} ({})", num(t, 2), name),
            color: TARGET,
        });
    }
    Some(c)
}

/// HPA metric names in order of first appearance.
pub(super) fn hpa_metric_names(run: &RunData) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = vec![];
    for s in &run.samples {
        for m in s.hpa.iter().flat_map(|h| &h.metrics) {
            if !out.iter().any(|(n, _)| n == &m.name) {
                out.push((m.name.clone(), m.unit.clone()));
            }
        }
    }
    out
}

/// One small chart per HPA metric: what the controller saw against its target.
pub(super) fn hpa_metric(run: &RunData, name: &str, unit: &str) -> TimeChart {
    let unit: &'static str = if unit == "%" { "%" } else { "" };
    let desc = if unit == "%" { "% of request" } else { "value" };
    let mut c =
        TimeChart::new(run, 552, 280, Axis::new(desc, Scale::Linear, unit)).with_context(run);
    let mut cur = Series::new("current", ACHIEVED, Stroke::Solid).width(2);
    let mut tgt = Series::new("target", TARGET, Stroke::Dashed).width(2);
    for s in &run.samples {
        let m = s
            .hpa
            .iter()
            .flat_map(|h| &h.metrics)
            .find(|m| m.name == name);
        cur.points.push((s.t, m.map_or(f64::NAN, |m| m.current)));
        tgt.points.push((s.t, m.map_or(f64::NAN, |m| m.target)));
    }
    c.series = vec![tgt, cur];
    c
}

pub(super) const P50: RGBColor = RGBColor(22, 163, 74);
pub(super) const P90: RGBColor = RGBColor(37, 99, 235);
pub(super) const P99: RGBColor = RGBColor(220, 38, 38);
pub(super) const SVC: RGBColor = RGBColor(107, 114, 128);

/// Response time percentiles per sample, log scale: overload pushes them up by
/// orders of magnitude and a linear axis would flatten the normal regime.
pub(super) fn latency(run: &RunData) -> TimeChart {
    let mut c = TimeChart::new(
        run,
        W,
        400,
        Axis::new("milliseconds (log)", Scale::Log, " ms"),
    )
    .with_context(run);
    // A sample without completions has no latency, not a zero one.
    let col = |f: &dyn Fn(&crate::recorder::Sample) -> f64| -> Vec<(f64, f64)> {
        run.samples
            .iter()
            .map(|s| (s.t, if s.completed > 0 { f(s) } else { f64::NAN }))
            .collect()
    };
    c.series = vec![
        Series::new("service time p99", SVC, Stroke::Dashed).points(col(&|s| s.service_ms.p99)),
        Series::new("p50", P50, Stroke::Solid).points(col(&|s| s.latency_ms.p50)),
        Series::new("p90", P90, Stroke::Solid).points(col(&|s| s.latency_ms.p90)),
        Series::new("p99", P99, Stroke::Solid).points(col(&|s| s.latency_ms.p99)),
    ];
    c
}

/// Error classes: (label, colour, count of a sample).
type Class = (&'static str, RGBColor, fn(&crate::recorder::Sample) -> u64);

pub(super) const ERROR_CLASSES: [Class; 5] = [
    ("5xx", RGBColor(220, 38, 38), |s| s.status.s5xx),
    ("4xx", RGBColor(245, 158, 11), |s| s.status.s4xx),
    ("timeout", RGBColor(124, 58, 237), |s| s.status.timeout),
    ("connect_error", RGBColor(8, 145, 178), |s| {
        s.status.connect_error
    }),
    ("other", RGBColor(107, 114, 128), |s| s.status.other),
];

pub(super) const SHORTFALL_CLASSES: [Class; 2] = [
    ("dropped (in-flight cap)", RGBColor(17, 24, 39), |s| {
        s.dropped
    }),
    ("late (> 1 ms after intended)", RGBColor(217, 119, 6), |s| {
        s.late
    }),
];

/// Per-sample counts of the classes that occurred at all; None when none did.
pub(super) fn counts(run: &RunData, classes: &[Class], y: &str) -> Option<TimeChart> {
    let series: Vec<Series> = classes
        .iter()
        .filter(|(_, _, f)| run.samples.iter().any(|s| f(s) > 0))
        .map(|(label, color, f)| {
            Series::new(*label, *color, Stroke::Solid)
                .width(2)
                .points(run.samples.iter().map(|s| (s.t, f(s) as f64)).collect())
        })
        .collect();
    if series.is_empty() {
        return None;
    }
    let mut c = TimeChart::new(run, W, 300, Axis::new(y, Scale::Count, "")).with_context(run);
    c.series = series;
    Some(c)
}
