//! `report.html`: one self-contained page (inline CSS and SVG, no scripts, no
//! network), readable at 1280 px and printable.

use std::fmt::Write as _;

use crate::checks::{Outcome, Verdict};
use crate::recorder::{Percentiles, RunData, RunMeta, Sample};

use super::charts::{self, hex, Stroke, TimeChart};
use super::{
    esc, events, firings, interval_s, kube_dur, mmss, num, policy, recorded_s, rescales,
    scaler_word, sorted_events, summary, tiers, FiringState,
};

pub(super) const CSS: &str = r#"
:root{--fg:#111827;--muted:#6b7280;--line:#e5e7eb;--bg:#f3f4f6;--ok:#065f46;--okbg:#d1fae5;--bad:#991b1b;--badbg:#fee2e2;--warn:#92400e;--warnbg:#fef3c7}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1220px;margin:0 auto;padding:24px 28px 40px}
header.top{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 24px}
.title{display:flex;align-items:center;gap:14px;flex-wrap:wrap}
h1{font-size:24px;margin:0;font-weight:650}
.kicker{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.08em;margin:0 0 4px}
.badge{display:inline-block;padding:3px 12px;border-radius:999px;font-weight:700;font-size:13px;letter-spacing:.05em;white-space:nowrap}
.pass{color:var(--ok);background:var(--okbg)}.skip{color:var(--muted);background:var(--bg)}.fail{color:var(--bad);background:var(--badbg)}.warn{color:var(--warn);background:var(--warnbg)}
dl.meta{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:10px 24px;margin:16px 0 0}
dl.meta div{min-width:0}dl.meta dt{color:var(--muted);font-size:12px}dl.meta dd{margin:0;font-weight:550;overflow-wrap:anywhere}
.banner{margin:14px 0 0;padding:10px 14px;border-radius:6px;background:var(--warnbg);color:var(--warn)}
nav{margin:14px 0 0;font-size:13px}nav a{color:#2563eb;text-decoration:none;margin-right:16px}nav a:hover{text-decoration:underline}
section{background:#fff;border:1px solid var(--line);border-radius:10px;padding:20px 24px;margin:18px 0}
h2{font-size:18px;margin:0 0 2px;font-weight:650}
h3{font-size:15px;margin:18px 0 2px;font-weight:600}
p.sub{color:var(--muted);margin:0 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
td:last-child{overflow-wrap:anywhere}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;background:#f9fafb}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.nowrap{white-space:nowrap}
tr.failed td{background:#fef2f2}
tr.warning td{background:#fffbeb}
figure{margin:10px 0 4px}figure>svg{width:100%;height:auto;display:block}
figure>svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
figcaption{color:var(--muted);font-size:13px;margin:6px 0 0 64px}
.legend{display:flex;flex-wrap:wrap;gap:4px 20px;font-size:13px;color:#374151;margin:2px 0 0 64px}
.legend span{white-space:nowrap}.legend span.long{white-space:normal;overflow-wrap:anywhere}.legend svg{vertical-align:middle;margin-right:6px}
.grid2{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:8px 24px}
.grid2 .legend,.grid2 figcaption{margin-left:58px}
.facts{display:grid;grid-template-columns:repeat(4,minmax(0,1fr));gap:12px;margin:14px 0 4px}
.fact{border:1px solid var(--line);border-radius:8px;padding:10px 14px}
.fact b{display:block;font-size:18px;font-weight:650}.fact span{color:var(--muted);font-size:12px}
pre{background:#f9fafb;border:1px solid var(--line);border-radius:6px;padding:12px 14px;overflow-x:auto;margin:8px 0;font:12.5px/1.5 ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace}
.ln{color:var(--muted);user-select:none}
.empty{color:var(--muted);font-style:italic;margin:8px 0}
.ok{color:var(--ok);font-weight:600}
footer{color:var(--muted);font-size:12px;text-align:center;margin-top:24px}
@media print{body{background:#fff}section,header.top{break-inside:avoid;border-color:#ddd}}
"#;

pub(super) fn render(run: &RunData, verdict: &Verdict) -> anyhow::Result<String> {
    let m = &run.meta;
    let title = if m.scenario_name.is_empty() {
        "unnamed scenario"
    } else {
        &m.scenario_name
    };
    let mut h = String::with_capacity(512 * 1024);
    write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} — autoscaling report</title>\n<style>{CSS}</style>\n</head>\n<body>\n<main>\n",
        esc(title)
    )?;
    header(&mut h, run, verdict, title)?;
    verdict_section(&mut h, verdict)?;
    fig7(&mut h, run)?;
    schedule(&mut h, run)?;
    policy::section(&mut h, run)?;
    tiers::section(&mut h, run)?;
    fig8(&mut h, run)?;
    latency(&mut h, run)?;
    errors(&mut h, run)?;
    events_section(&mut h, run)?;
    scenario(&mut h, run)?;
    writeln!(
        h,
        "<footer>autoscale-harness report · times are experiment time since the start of the run ([h:]m:ss)</footer>\n</main>\n</body>\n</html>"
    )?;
    Ok(h)
}

/// What an interrupted run's record covers: a run cut during its final
/// wait for the requests in flight ran its whole plan, and only those are
/// missing.
fn interrupted_banner(m: &RunMeta, recorded_s: f64) -> String {
    let lost = match m.unrecorded_in_flight {
        Some(1) => " 1 request still in flight then is not in the record.".to_string(),
        Some(n) if n > 0 => format!(" {n} requests still in flight then are not in the record."),
        _ => String::new(),
    };
    if recorded_s + 1e-3 < m.duration_s {
        format!(
            "The run ended early at {} of a planned {}: the charts and checks cover only what was recorded.{lost}",
            mmss(recorded_s),
            mmss(m.duration_s)
        )
    } else {
        format!(
            "The run ran its planned {}, then was interrupted while it waited for the last responses.{lost} The charts and checks cover everything else.",
            mmss(m.duration_s)
        )
    }
}

fn header(h: &mut String, run: &RunData, verdict: &Verdict, title: &str) -> anyhow::Result<()> {
    let m = &run.meta;
    let badge = if verdict.checks.is_empty() {
        // Nothing asserted is nothing passed.
        r#"<span class="badge warn">NO CHECKS</span>"#
    } else if verdict.passed() {
        r#"<span class="badge pass">PASSED</span>"#
    } else if verdict.count(Outcome::Failed) == 0 {
        r#"<span class="badge warn">NOT EVALUATED</span>"#
    } else {
        r#"<span class="badge fail">FAILED</span>"#
    };
    let partial = if m.interrupted {
        r#"<span class="badge warn">INTERRUPTED — partial</span>"#
    } else {
        ""
    };
    writeln!(
        h,
        "<header class=\"top\">\n<p class=\"kicker\">Autoscaling experiment report</p>\n\
         <div class=\"title\"><h1>{}</h1>{badge}{partial}</div>",
        esc(title)
    )?;
    let rec = recorded_s(run);
    let mut duration = kube_dur(rec);
    if m.duration_s.is_finite() && m.duration_s > 0.0 && (m.duration_s - rec).abs() >= 1.0 {
        write!(duration, " (planned {})", kube_dur(m.duration_s))?;
    }
    let speed = if m.speed.is_finite() && m.speed > 0.0 {
        format!("{}× real time", num(m.speed, 2))
    } else {
        "–".into()
    };
    let hpa = if m.hpa_name.is_empty() {
        "–".to_string()
    } else {
        format!(
            "{} ({}–{} replicas)",
            m.hpa_name, m.min_replicas, m.max_replicas
        )
    };
    let items = [
        ("Backend", or_dash(&m.backend)),
        ("Speed", speed),
        ("Started (t = 0)", or_dash(&m.started_at)),
        ("Duration", duration),
        (
            "Samples",
            format!("{} × {} s", run.samples.len(), num(interval_s(run), 3)),
        ),
        (if m.policy.is_some() { "Policy" } else { "HPA" }, hpa),
        (
            "Checks",
            format!(
                "{} of {} passed",
                verdict.count(Outcome::Passed),
                verdict.checks.len()
            ),
        ),
        ("Seed", m.seed.to_string()),
    ];
    h.push_str("<dl class=\"meta\">");
    for (k, v) in items {
        write!(h, "<div><dt>{k}</dt><dd>{}</dd></div>", esc(&v))?;
    }
    h.push_str("</dl>\n");
    if m.interrupted {
        writeln!(
            h,
            "<p class=\"banner\">{}</p>",
            esc(&interrupted_banner(m, rec))
        )?;
    }
    h.push_str("<nav><a href=\"#verdict\">Verdict</a><a href=\"#fig7\">QPS and pods</a>");
    if run.meta.schedule.is_some() {
        h.push_str("<a href=\"#schedule\">Schedule</a>");
    }
    if run.meta.policy.is_some() {
        h.push_str("<a href=\"#policy\">Policy</a>");
    }
    if !run.meta.tiers.is_empty() {
        h.push_str("<a href=\"#tiers\">Both tiers</a>");
    }
    h.push_str(
        "<a href=\"#fig8\">Per-pod load</a>\
         <a href=\"#latency\">Latency</a><a href=\"#errors\">Errors</a><a href=\"#events\">Events</a><a href=\"#scenario\">Scenario</a></nav>\n</header>\n",
    );
    Ok(())
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "–".into()
    } else {
        s.to_string()
    }
}

fn verdict_section(h: &mut String, verdict: &Verdict) -> anyhow::Result<()> {
    h.push_str("<section id=\"verdict\">\n<h2>Verdict</h2>\n");
    if verdict.checks.is_empty() {
        h.push_str("<p class=\"empty\">The scenario defines no expectations.</p>\n</section>\n");
        return Ok(());
    }
    let undecided = verdict.count(Outcome::NotEvaluated);
    writeln!(
        h,
        "<p class=\"sub\">{} checks, {} failed{}.</p>",
        verdict.checks.len(),
        verdict.count(Outcome::Failed),
        if undecided > 0 {
            format!(", {undecided} not evaluated (the record does not reach what they need)")
        } else {
            String::new()
        }
    )?;
    h.push_str("<table><thead><tr><th style=\"width:90px\">Result</th><th>Check</th><th>Expected</th><th>Measured</th></tr></thead><tbody>\n");
    for c in &verdict.checks {
        let (cls, badge) = match c.outcome() {
            Outcome::Passed => ("", r#"<span class="badge pass">PASS</span>"#),
            Outcome::Failed => (
                " class=\"failed\"",
                r#"<span class="badge fail">FAIL</span>"#,
            ),
            Outcome::NotEvaluated => ("", r#"<span class="badge warn">NOT EVALUATED</span>"#),
        };
        let why = c
            .not_evaluated
            .as_ref()
            .map(|w| format!("<br><i>not evaluated: {}</i>", esc(w)))
            .unwrap_or_default();
        writeln!(
            h,
            "<tr{cls}><td>{badge}</td><td><b>{}</b></td><td>{}</td><td>{}{why}</td></tr>",
            esc(&c.name),
            esc(&c.bound),
            esc(&c.measured)
        )?;
    }
    h.push_str("</tbody></table>\n</section>\n");
    Ok(())
}

/// An inline SVG chart with its HTML legend and caption.
pub(super) fn figure(
    h: &mut String,
    c: &TimeChart,
    aria: &str,
    caption: &str,
) -> anyhow::Result<()> {
    let svg = c.draw()?;
    let svg = svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", esc(aria)),
        1,
    );
    write!(h, "<figure>{svg}")?;
    legend(h, c)?;
    if !caption.is_empty() {
        write!(h, "<figcaption>{caption}</figcaption>")?;
    }
    h.push_str("</figure>\n");
    Ok(())
}

fn swatch(color: &str, stroke: Stroke, width: u32) -> String {
    let dash = if stroke.dashed() {
        " stroke-dasharray=\"5 3\""
    } else {
        ""
    };
    let path = match stroke {
        Stroke::Step | Stroke::StepDashed => "M1 10 H12 V3 H27",
        _ => "M1 6.5 H27",
    };
    format!(
        "<svg width=\"28\" height=\"13\" aria-hidden=\"true\"><path d=\"{path}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"{width}\"{dash}/></svg>"
    )
}

/// Long labels (an external metric with its selector) may wrap, or they
/// would widen the page.
fn long(label: &str) -> &'static str {
    if label.chars().count() > 60 {
        " class=\"long\""
    } else {
        ""
    }
}

fn legend(h: &mut String, c: &TimeChart) -> anyhow::Result<()> {
    h.push_str("<div class=\"legend\">");
    for s in &c.series {
        let side = if s.secondary && c.y2.is_some() {
            " <small>(right axis)</small>"
        } else {
            ""
        };
        write!(
            h,
            "<span{}>{}{}{side}</span>",
            long(&s.label),
            swatch(&hex(s.color), s.stroke, s.width.max(2)),
            esc(&s.label)
        )?;
    }
    for l in &c.hlines {
        write!(
            h,
            "<span{}>{}{}</span>",
            long(&l.label),
            swatch(&hex(l.color), Stroke::Dashed, 2),
            esc(&l.label)
        )?;
    }
    if !c.marks.is_empty() {
        write!(
            h,
            "<span><svg width=\"14\" height=\"13\" aria-hidden=\"true\"><path d=\"M7 0 V13\" stroke=\"{}\" stroke-width=\"1.5\" stroke-dasharray=\"3 2\"/></svg>rescale (→ new size)</span>",
            hex(charts::MARK)
        )?;
    }
    if c.shade_from.is_some() {
        h.push_str("<span><svg width=\"18\" height=\"13\" aria-hidden=\"true\"><rect width=\"18\" height=\"13\" fill=\"#f3f4f6\" stroke=\"#d1d5db\"/></svg>after load stop</span>");
    }
    if let Some(b) = &c.band {
        let side = if b.secondary && c.y2.is_some() {
            " <small>(right axis)</small>"
        } else {
            ""
        };
        write!(
            h,
            "<span><svg width=\"18\" height=\"13\" aria-hidden=\"true\"><rect x=\"0.5\" y=\"1.5\" width=\"17\" height=\"10\" fill=\"{}\" stroke=\"{}\"/></svg>{}{side}</span>",
            hex(charts::lighten(b.color, 0.13)),
            hex(charts::lighten(b.color, 0.45)),
            esc(&b.label)
        )?;
    }
    for (state, what) in [
        (FiringState::Changed, "schedule firing (job name)"),
        (FiringState::Skipped, "firing that changed nothing"),
        (FiringState::Failed, "failed firing"),
    ] {
        if !c.firings.iter().any(|f| f.state == state) {
            continue;
        }
        let (color, alpha, dash) = charts::firing_style(state);
        let dash = dash.map_or(String::new(), |(on, off)| {
            format!(" stroke-dasharray=\"{on} {off}\"")
        });
        write!(
            h,
            "<span><svg width=\"14\" height=\"13\" aria-hidden=\"true\"><path d=\"M7 0 V13\" stroke=\"{}\" stroke-width=\"2\"{dash}/></svg>{what}</span>",
            hex(charts::lighten(color, alpha))
        )?;
    }
    h.push_str("</div>");
    Ok(())
}

fn fact(h: &mut String, value: &str, label: &str) -> anyhow::Result<()> {
    write!(
        h,
        "<div class=\"fact\"><b>{}</b><span>{}</span></div>",
        esc(value),
        esc(label)
    )?;
    Ok(())
}

fn fig7(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    h.push_str("<section id=\"fig7\">\n<h2>Fig. 7 — Offered and achieved QPS, and pods</h2>\n");
    let iv = interval_s(run);
    writeln!(
        h,
        "<p class=\"sub\">Offered is the scenario's intended rate; achieved is completed requests per sample ÷ {} s. \
         Pods: ready replicas and the {}'s desired replicas (right axis).</p>",
        num(iv, 3),
        scaler_word(run)
    )?;
    if run.samples.is_empty() {
        h.push_str("<p class=\"empty\">No samples were recorded.</p>\n</section>\n");
        return Ok(());
    }
    let peak_qps = run
        .samples
        .iter()
        .map(|s| s.completed as f64 / iv)
        .fold(0.0, f64::max);
    let peak = summary::peak_replicas(run);
    let rs = rescales(run);
    h.push_str("<div class=\"facts\">");
    fact(h, &format!("{} req/s", num(peak_qps, 1)), "peak achieved")?;
    fact(
        h,
        &format!("{} ready / {} desired", peak.ready, peak.desired),
        "peak pods",
    )?;
    match summary::first_scale_out(run) {
        Some(o) => fact(
            h,
            &format!("{} → {} at {}", opt(o.from), opt(o.to), mmss(o.t)),
            &match o.offered_qps {
                Some(q) => format!("first scale-out, {} QPS offered", num(q, 1)),
                None => "first scale-out".into(),
            },
        )?,
        None => fact(h, "none", "scale-out")?,
    }
    match summary::last_scale_in(run) {
        Some(i) => fact(
            h,
            &format!("{} → {} at {}", opt(i.from), opt(i.to), mmss(i.t)),
            &if i.t >= run.meta.load_stop_s {
                format!(
                    "last scale-in, {} after load stop",
                    signed_dur(i.t - run.meta.load_stop_s)
                )
            } else {
                "last scale-in, while the load ran".to_string()
            },
        )?,
        None => fact(h, "none", "scale-in")?,
    }
    h.push_str("</div>\n");
    let c = charts::qps_and_pods(run);
    let mut caption = if c.shade_from.is_some() {
        format!(
            "{} rescale event(s); the shaded area is after the load stopped at {}.",
            rs.len(),
            mmss(run.meta.load_stop_s)
        )
    } else {
        format!("{} rescale event(s).", rs.len())
    };
    if run.meta.schedule.is_some() {
        write!(
            caption,
            " {} schedule firing(s), listed under <a href=\"#schedule\">Schedule</a>",
            c.firings.len()
        )?;
        caption.push_str(if c.band.is_some() {
            "; the band is the HPA's min..max range as the schedule set it."
        } else {
            "."
        });
    }
    figure(
        h,
        &c,
        "Offered and achieved QPS with ready and desired pods over time",
        &caption,
    )?;
    h.push_str("</section>\n");
    Ok(())
}

/// How many planned times a jobs table cell shows before abbreviating.
const FIRES_SHOWN: usize = 8;

/// Experiment times, the first few and the last when there are many.
fn fires_at(ts: &[f64]) -> String {
    if ts.is_empty() {
        return "–".into();
    }
    let fmt = |ts: &[f64]| ts.iter().map(|t| mmss(*t)).collect::<Vec<_>>().join(", ");
    if ts.len() <= FIRES_SHOWN {
        return fmt(ts);
    }
    format!(
        "{}, … {} ({} in all)",
        fmt(&ts[..FIRES_SHOWN - 2]),
        mmss(ts[ts.len() - 1]),
        ts.len()
    )
}

fn schedule(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    let Some(s) = &run.meta.schedule else {
        return Ok(());
    };
    h.push_str("<section id=\"schedule\">\n<h2>Schedule</h2>\n");
    writeln!(
        h,
        "<p class=\"sub\">A CronHorizontalPodAutoscaler sets its target's size at cron times; on an HPA it moves the range (min..max) and, where the current size is below the job's, the replicas too. Its firings are the marked lines on Fig. 7.</p>"
    )?;
    let controller = match s.controller.as_str() {
        "embedded" => "the embedded cluster (the controller's rules)".to_string(),
        "harness" => "the harness, on the cluster (the controller's rules)".to_string(),
        "cluster" => "the cluster's kubernetes-cronhpa-controller".to_string(),
        "off" => "nobody: left out of this run".to_string(),
        other => or_dash(other),
    };
    h.push_str("<dl class=\"meta\">");
    for (k, v) in [
        ("Object", or_dash(&s.object)),
        ("Targets", or_dash(&s.target)),
        ("Run by", controller),
        ("t = 0 on its clock", or_dash(&s.clock_start)),
    ] {
        // Long object names break after their kind, not mid-word.
        let v = esc(&v).replace('/', "/<wbr>");
        write!(h, "<div><dt>{k}</dt><dd>{v}</dd></div>")?;
    }
    h.push_str("</dl>\n<h3>Jobs</h3>\n");
    let fired = firings(run);
    if s.jobs.is_empty() {
        h.push_str("<p class=\"empty\">The object has no jobs.</p>\n");
    } else {
        h.push_str("<table><thead><tr><th>Job</th><th>Schedule</th><th class=\"num\">Target size</th><th>Run once</th><th class=\"num\">Fired</th><th>Fires at (planned)</th></tr></thead><tbody>\n");
        for j in &s.jobs {
            let n = fired
                .iter()
                .filter(|f| f.job.as_deref() == Some(j.name.as_str()))
                .count();
            writeln!(
                h,
                "<tr><td class=\"nowrap\"><b>{}</b></td><td class=\"nowrap\"><code>{}</code></td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{n}</td><td>{}</td></tr>",
                esc(&j.name),
                esc(&j.schedule),
                j.target_size,
                if j.run_once { "yes" } else { "no" },
                esc(&fires_at(&j.fires_at))
            )?;
        }
        h.push_str("</tbody></table>\n");
        if s.controller == "cluster" && s.jobs.iter().all(|j| j.fires_at.is_empty()) {
            h.push_str("<p class=\"sub\" style=\"margin-top:8px\">The cluster's controller decides when it fires, so no times are planned here; the firings below are what it did.</p>\n");
        }
    }
    writeln!(
        h,
        "<p class=\"sub\" style=\"margin-top:8px\">Exclude dates: {}</p>",
        if s.exclude_dates.is_empty() {
            "none".to_string()
        } else {
            s.exclude_dates
                .iter()
                .map(|d| format!("<code>{}</code>", esc(d)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    )?;
    h.push_str("<h3>Firings</h3>\n");
    if fired.is_empty() {
        h.push_str("<p class=\"empty\">No job fired during the run.</p>\n</section>\n");
        return Ok(());
    }
    h.push_str("<table><thead><tr><th class=\"num\">At</th><th>Job</th><th>State</th><th>Changed</th><th>Message</th></tr></thead><tbody>\n");
    // A job that fires often and changes nothing (or keeps failing) is one
    // row per unbroken run of such firings, not hundreds.
    for group in fired
        .chunk_by(|a, b| a.job == b.job && a.state == b.state && a.state != FiringState::Changed)
    {
        let (f, last) = (&group[0], &group[group.len() - 1]);
        let (times, times_n) = match group {
            [one] => (mmss(one.t), String::new()),
            _ => (
                format!("{}–{}", mmss(f.t), mmss(last.t)),
                format!(" ×{}", group.len()),
            ),
        };
        let (cls, badge) = match f.state {
            FiringState::Changed => ("", "badge pass"),
            FiringState::Skipped => ("", "badge skip"),
            FiringState::Failed => (" class=\"warning\"", "badge warn"),
        };
        let badge = format!("<span class=\"{badge}\">{}{times_n}</span>", f.state.word());
        let mut changed = vec![];
        if let (Some(a), Some(b)) = (f.from, f.to) {
            changed.push(format!("replicas {a} → {b}"));
        }
        if let (true, Some(a), Some(b)) = (f.moved_range(), f.range_before, f.range_after) {
            changed.push(format!("range {}–{} → {}–{}", a.0, a.1, b.0, b.1));
        }
        let mut message = esc(&f.event.message);
        if last.event.message != f.event.message {
            message.push_str(&format!("<br>… the last: {}", esc(&last.event.message)));
        }
        writeln!(
            h,
            "<tr{cls}><td class=\"num nowrap\">{times}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{badge}</td><td class=\"nowrap\">{}</td><td>{message}</td></tr>",
            esc(f.job.as_deref().unwrap_or("?")),
            if changed.is_empty() {
                "–".to_string()
            } else {
                changed.join("<br>")
            },
        )?;
    }
    h.push_str("</tbody></table>\n</section>\n");
    Ok(())
}

fn opt(v: Option<i32>) -> String {
    v.map_or("?".into(), |v| v.to_string())
}

fn signed_dur(s: f64) -> String {
    if s < 0.0 {
        format!("-{}", kube_dur(-s))
    } else {
        kube_dur(s)
    }
}

fn fig8(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    if run.meta.policy.is_some() {
        h.push_str("<section id=\"fig8\">\n<h2>Fig. 8 — Per-pod load</h2>\n");
        h.push_str("<p class=\"sub\">Each line is one pod, from when it appeared to when it went away. The Lua policy reads the ready pods' mean of these; its thresholds are in its script, so no target is drawn.</p>\n");
    } else {
        h.push_str(
            "<section id=\"fig8\">\n<h2>Fig. 8 — Per-pod load against the HPA target</h2>\n",
        );
        h.push_str("<p class=\"sub\">Each line is one pod, from when it appeared to when it went away. The dashed red line is the HPA's target: the controller scales so the per-pod average sits at or below it.</p>\n");
    }
    h.push_str("<h3>CPU utilization per pod</h3>\n");
    match charts::pod_cpu(run) {
        Some(c) => figure(h, &c, "CPU utilization per pod", "Percent of the pod's CPU request.")?,
        None => h.push_str("<p class=\"empty\">No per-pod CPU utilization was recorded (no pods, or pods without a CPU request).</p>\n"),
    }
    h.push_str("<h3>Requests per second per pod</h3>\n");
    if let Some(why) = &run.meta.pod_qps_unobservable {
        writeln!(
            h,
            "<p class=\"empty\">Per-pod load is not observable on this cluster: {}.</p>",
            esc(why)
        )?;
    } else {
        match charts::pod_qps(run) {
            Some(c) => {
                let caption = match charts::hpa_target(run, charts::is_qps_metric) {
                Some((name, _)) if name.contains("external metric") => {
                    "Requests the gateway sent to each pod. The HPA's external metric has an AverageValue target, i.e. a per-pod target, drawn as is."
                }
                Some(_) => "Requests the gateway sent to each pod; the target is the HPA's per-pod metric target.",
                None if run.meta.policy.is_some() => "Requests the gateway sent to each pod.",
                None => "Requests the gateway sent to each pod. The HPA has no QPS-type metric, so no target is drawn.",
            };
                figure(h, &c, "Requests per second per pod", caption)?
            }
            None => h.push_str("<p class=\"empty\">No per-pod data was recorded.</p>\n"),
        }
    }
    if run.meta.policy.is_some() {
        // A policy has no metric with a target; what it did is in its own section.
        h.push_str("</section>\n");
        return Ok(());
    }
    h.push_str("<h3>HPA metrics as the controller read them</h3>\n");
    let names = charts::hpa_metric_names(run);
    if names.is_empty() {
        h.push_str("<p class=\"empty\">The HPA reported no metrics.</p>\n");
    } else {
        h.push_str("<div class=\"grid2\">");
        for (name, unit) in &names {
            write!(
                h,
                "<div><p class=\"sub\" style=\"margin:8px 0 0\"><b>{}</b></p>",
                esc(name)
            )?;
            let c = charts::hpa_metric(run, name, unit);
            figure(h, &c, name, "")?;
            h.push_str("</div>");
        }
        h.push_str("</div>\n");
    }
    h.push_str("</section>\n");
    Ok(())
}

/// Summary statistics of one per-sample percentile over the samples that completed requests.
struct Col {
    median: f64,
    worst: f64,
}

fn col(samples: &[&Sample], f: impl Fn(&Percentiles) -> f64, svc: bool) -> Col {
    let mut v: Vec<f64> = samples
        .iter()
        .map(|s| f(if svc { &s.service_ms } else { &s.latency_ms }))
        .filter(|v| v.is_finite())
        .collect();
    v.sort_by(f64::total_cmp);
    Col {
        median: v.get(v.len() / 2).copied().unwrap_or(f64::NAN),
        worst: v.last().copied().unwrap_or(f64::NAN),
    }
}

fn ms(v: f64) -> String {
    if !v.is_finite() {
        "–".into()
    } else if v >= 1000.0 {
        format!("{} s", num(v / 1000.0, 2))
    } else if v >= 100.0 {
        format!("{} ms", num(v, 0))
    } else {
        format!("{} ms", num(v, 1))
    }
}

fn latency(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    h.push_str("<section id=\"latency\">\n<h2>Latency</h2>\n");
    let w = format!("{}-s", num(interval_s(run), 3));
    writeln!(
        h,
        "<p class=\"sub\">Response time is measured from each request's <i>intended</i> send time, so queueing in the load generator counts \
         (no coordinated omission); service time is from the actual send. Percentiles are per {w} sample.</p>"
    )?;
    let done: Vec<&Sample> = run.samples.iter().filter(|s| s.completed > 0).collect();
    if done.is_empty() {
        h.push_str("<p class=\"empty\">No requests completed, so there is no latency to show.</p>\n</section>\n");
        return Ok(());
    }
    figure(
        h,
        &charts::latency(run),
        "Latency percentiles over time (log scale)",
        "Log scale. Samples without completed requests are gaps.",
    )?;
    writeln!(
        h,
        "<p class=\"sub\" style=\"margin-top:14px\">Over the run. These are statistics <i>of per-sample percentiles</i>, not percentiles of all requests: \
         “worst {w} p99” is the highest p99 any single sample had. Over {} samples with completed requests.</p>",
        done.len()
    )?;
    h.push_str("<table><thead><tr><th></th>");
    let heads = [
        format!("median {w} p50"),
        format!("median {w} p99"),
        format!("worst {w} p50"),
        format!("worst {w} p90"),
        format!("worst {w} p99"),
        format!("worst {w} p99.9"),
        "max".to_string(),
    ];
    for t in &heads {
        write!(h, "<th class=\"num\">{}</th>", esc(t))?;
    }
    h.push_str("</tr></thead><tbody>\n");
    for (label, svc) in [
        ("Response time (from intended send)", false),
        ("Service time (from actual send)", true),
    ] {
        let cells = [
            col(&done, |p| p.p50, svc).median,
            col(&done, |p| p.p99, svc).median,
            col(&done, |p| p.p50, svc).worst,
            col(&done, |p| p.p90, svc).worst,
            col(&done, |p| p.p99, svc).worst,
            col(&done, |p| p.p999, svc).worst,
            col(&done, |p| p.max, svc).worst,
        ];
        write!(h, "<tr><td>{label}</td>")?;
        for v in cells {
            write!(h, "<td class=\"num\">{}</td>", ms(v))?;
        }
        h.push_str("</tr>\n");
    }
    h.push_str("</tbody></table>\n</section>\n");
    Ok(())
}

fn errors(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    h.push_str("<section id=\"errors\">\n<h2>Errors</h2>\n");
    let t = summary::totals(run);
    let ratio = t
        .error_ratio
        .map_or("–".into(), |r| format!("{}%", num(r * 100.0, 4)));
    let clean = t.errors == 0 && t.dropped == 0 && t.late == 0;
    if clean {
        h.push_str("<p class=\"ok\">No errors: every completed request got a 2xx or 3xx, none was dropped or late.</p>\n");
    } else {
        h.push_str("<p class=\"sub\">Requests per sample that did not get a 2xx/3xx answer, by class. Only classes that occurred are drawn.</p>\n");
        match charts::counts(run, &charts::ERROR_CLASSES, "errors per sample") {
            Some(c) => figure(h, &c, "Errors per sample by class", "")?,
            None => h.push_str("<p class=\"ok\">No failed requests.</p>\n"),
        }
        if let Some(c) = charts::counts(run, &charts::SHORTFALL_CLASSES, "requests per sample") {
            h.push_str("<h3>Load generator shortfall</h3>\n<p class=\"sub\">Requests not sent because the in-flight cap was reached (dropped), or sent more than 1 ms after their intended time (late).</p>\n");
            if let Some(lag) = summary::generator_lag(run) {
                // Faster than real time, a stall of a few real milliseconds
                // (the harness's or the machine's) is a large part of a
                // sample: say so, or a dip and spike in QPS looks like the
                // system under test.
                let speed = run.meta.speed;
                let scaled = speed > 1.0;
                let worst = lag.worst_ms.map_or(String::new(), |ms| {
                    if scaled {
                        format!(
                            " (sends up to {} ms late in experiment time: {} ms of real time at {}×)",
                            num(ms, 1),
                            num(ms / speed, 1),
                            num(speed, 2)
                        )
                    } else {
                        format!(" (sends up to {} ms late)", num(ms, 1))
                    }
                });
                let stalls = if scaled {
                    format!(
                        " At {}× a stall of a few milliseconds of real time delays everything in flight by {} times as much experiment time, which shows as a dip and a spike in achieved QPS in neighbouring samples.",
                        num(speed, 2),
                        num(speed, 2)
                    )
                } else {
                    String::new()
                };
                writeln!(
                    h,
                    "<p>The load generator fell behind in {} samples ({} late requests) between {} and {}; worst at {}{}. Latency in those samples is still measured from the intended send time.{}</p>",
                    lag.samples,
                    lag.late,
                    mmss(lag.first_t),
                    mmss(lag.last_t),
                    mmss(lag.worst_t),
                    worst,
                    stalls
                )?;
            }
            figure(h, &c, "Dropped and late requests per sample", "")?;
        }
    }
    h.push_str("<h3>Totals</h3>\n<table><thead><tr>");
    let cols: [(&str, u64); 13] = [
        ("intended", t.intended),
        ("sent", t.sent),
        ("completed", t.completed),
        ("2xx", t.status.s2xx),
        ("3xx", t.status.s3xx),
        ("4xx", t.status.s4xx),
        ("5xx", t.status.s5xx),
        ("timeout", t.status.timeout),
        ("connect_error", t.status.connect_error),
        ("other", t.status.other),
        ("errors", t.errors),
        ("dropped", t.dropped),
        ("late", t.late),
    ];
    for (k, _) in &cols {
        write!(h, "<th class=\"num\">{k}</th>")?;
    }
    h.push_str("<th class=\"num\">error ratio</th></tr></thead><tbody><tr>");
    for (_, v) in &cols {
        write!(h, "<td class=\"num\">{v}</td>")?;
    }
    writeln!(h, "<td class=\"num\">{ratio}</td></tr></tbody></table>")?;
    h.push_str("<p class=\"sub\" style=\"margin-top:8px\">errors = 4xx + 5xx + timeout + connect_error + other; error ratio = errors ÷ completed.</p>\n</section>\n");
    Ok(())
}

fn events_section(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    h.push_str("<section id=\"events\">\n<h2>Events</h2>\n");
    let (whose, describe) = if run.meta.policy.is_some() {
        ("The Lua policy's", "kubectl describe deployment")
    } else {
        ("The HPA's", "kubectl describe hpa")
    };
    writeln!(
        h,
        "<p class=\"sub\">{whose} events as <code>{describe}</code> prints them, except that the <b>At</b> column is the time since the start of the experiment (kubectl's Age is the time before now).</p>"
    )?;
    writeln!(h, "<pre>{}</pre>", esc(&events::block(run)))?;
    h.push_str("<h3>All events</h3>\n");
    let ev = sorted_events(run);
    if ev.is_empty() {
        h.push_str("<p class=\"empty\">No events were recorded.</p>\n</section>\n");
        return Ok(());
    }
    // A real cluster's own timestamps, to line up with `kubectl get events`.
    let cluster = ev.iter().any(|e| e.cluster_time.is_some());
    writeln!(
        h,
        "<table><thead><tr><th class=\"num\">At</th>{}<th>Object</th><th>Type</th><th>Reason</th><th>From</th><th>Message</th></tr></thead><tbody>",
        if cluster { "<th>Cluster time (UTC)</th>" } else { "" }
    )?;
    for e in ev {
        let cluster_cell = if cluster {
            format!(
                "<td class=\"nowrap\">{}</td>",
                esc(e.cluster_time.as_deref().unwrap_or("–"))
            )
        } else {
            String::new()
        };
        let cls = if e.type_ == "Warning" {
            " class=\"warning\""
        } else {
            ""
        };
        writeln!(
            h,
            "<tr{cls}><td class=\"num\">{}</td>{cluster_cell}<td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td>{}</td></tr>",
            mmss(e.t),
            esc(&e.object),
            esc(&e.type_),
            esc(&e.reason),
            esc(&e.source),
            esc(&e.message)
        )?;
    }
    h.push_str("</tbody></table>\n</section>\n");
    Ok(())
}

fn scenario(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    let m = &run.meta;
    h.push_str("<section id=\"scenario\">\n<h2>Scenario</h2>\n");
    if !m.scenario_path.is_empty() {
        writeln!(
            h,
            "<p class=\"sub\"><code>{}</code></p>",
            esc(&m.scenario_path)
        )?;
    }
    if m.scenario_text.is_empty() {
        h.push_str("<p class=\"empty\">The scenario text was not recorded.</p>\n");
    } else {
        writeln!(h, "<pre>{}</pre>", esc(&m.scenario_text))?;
    }
    h.push_str("<h3>Environment</h3>\n");
    if m.environment.is_empty() {
        h.push_str("<p class=\"empty\">No environment recorded.</p>\n");
    } else {
        h.push_str("<table><tbody>\n");
        for (k, v) in &m.environment {
            writeln!(
                h,
                "<tr><th style=\"width:220px\">{}</th><td><code>{}</code></td></tr>",
                esc(k),
                esc(v)
            )?;
        }
        h.push_str("</tbody></table>\n");
    }
    h.push_str("</section>\n");
    Ok(())
}
