//! The Lua policy's section: what scaled the target in place of an HPA,
//! what it decided and logged, and its script, numbered so that a warning's
//! `file:line` can be read off it.

use std::fmt::Write as _;

use crate::recorder::{Event, RunData};

use super::{esc, kube_dur, mmss, num, rescales, sorted_events};

/// Consecutive policy events that say the same thing up to their numbers
/// (a script logging `CPU usage: 3.0%` at each call), folded into one row.
struct Run<'a> {
    first: &'a Event,
    last: &'a Event,
    count: usize,
}

/// The message with each run of digits as `#`: what a repeated log line
/// keeps from call to call.
fn shape(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut in_digits = false;
    for c in msg.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('#');
            }
            in_digits = true;
        } else {
            in_digits = false;
            out.push(c);
        }
    }
    out
}

fn folded<'a>(events: &[&'a Event]) -> Vec<Run<'a>> {
    let mut runs: Vec<Run<'a>> = Vec::new();
    for &e in events {
        match runs.last_mut() {
            // A rescale is a decision: never folded.
            Some(r)
                if e.reason != "SuccessfulRescale"
                    && r.last.reason == e.reason
                    && r.last.type_ == e.type_
                    && shape(&r.last.message) == shape(&e.message) =>
            {
                r.last = e;
                r.count += 1;
            }
            _ => runs.push(Run {
                first: e,
                last: e,
                count: 1,
            }),
        }
    }
    runs
}

pub(super) fn section(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    let Some(p) = &run.meta.policy else {
        return Ok(());
    };
    h.push_str("<section id=\"policy\">\n<h2>Lua policy</h2>\n");
    writeln!(
        h,
        "<p class=\"sub\"><code>{}</code> scales {} in place of an HPA: it runs every {} and its decision is clamped to [{}, {}]. A call that fails holds the size and posts a Warning naming the script's line.</p>",
        esc(&p.script),
        esc(&p.target),
        kube_dur(p.interval_s),
        p.min,
        p.max
    )?;
    let events: Vec<&Event> = sorted_events(run)
        .into_iter()
        .filter(|e| e.source == crate::lua::policy::SOURCE)
        .collect();
    let warnings = events.iter().filter(|e| e.type_ == "Warning").count();
    let logs = events.iter().filter(|e| e.reason == "PolicyLog").count();
    let changes = rescales(run).len();
    h.push_str("<div class=\"facts\">");
    for (value, label) in [
        (changes.to_string(), "rescales"),
        (logs.to_string(), "log lines"),
        (warnings.to_string(), "failed calls (held)"),
    ] {
        write!(
            h,
            "<div class=\"fact\"><b>{}</b><span>{label}</span></div>",
            esc(&value)
        )?;
    }
    h.push_str("</div>\n<h3>Decisions and log lines</h3>\n");
    if events.is_empty() {
        h.push_str("<p class=\"empty\">The policy posted no event: it never changed the size and its script logged nothing.</p>\n");
    } else {
        h.push_str("<p class=\"sub\">Repeated lines that differ only in their numbers are folded into one row, with the first and the last.</p>\n");
        h.push_str("<table><thead><tr><th class=\"num\">At</th><th class=\"num\">Times</th><th>Type</th><th>Reason</th><th>Message</th></tr></thead><tbody>\n");
        for r in folded(&events) {
            let cls = if r.first.type_ == "Warning" {
                " class=\"warning\""
            } else {
                ""
            };
            let (at, message) = if r.count == 1 {
                (mmss(r.first.t), esc(&r.first.message))
            } else {
                (
                    format!("{}–{}", mmss(r.first.t), mmss(r.last.t)),
                    format!(
                        "{}<br><small>… last: {}</small>",
                        esc(&r.first.message),
                        esc(&r.last.message)
                    ),
                )
            };
            writeln!(
                h,
                "<tr{cls}><td class=\"num nowrap\">{at}</td><td class=\"num\">{}</td><td>{}</td><td class=\"nowrap\">{}</td><td>{message}</td></tr>",
                r.count,
                esc(&r.first.type_),
                esc(&r.first.reason)
            )?;
        }
        h.push_str("</tbody></table>\n");
    }
    let lines = p.source.lines().count();
    writeln!(
        h,
        "<h3>The script</h3>\n<p class=\"sub\"><code>{}</code>, {} line{}, as the run read it.</p>",
        esc(&p.script),
        lines,
        if lines == 1 { "" } else { "s" }
    )?;
    let width = num(lines as f64, 0).len();
    h.push_str("<pre>");
    for (i, l) in p.source.lines().enumerate() {
        writeln!(h, "<span class=\"ln\">{:>width$}</span>  {}", i + 1, esc(l))?;
    }
    h.push_str("</pre>\n</section>\n");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: f64, reason: &str, message: &str) -> Event {
        Event {
            t,
            type_: "Normal".into(),
            reason: reason.into(),
            message: message.into(),
            source: crate::lua::policy::SOURCE.into(),
            ..Default::default()
        }
    }

    #[test]
    fn repeated_log_lines_fold_but_rescales_do_not() {
        let e = [
            ev(15.0, "PolicyLog", "low CPU usage: 3.0%"),
            ev(30.0, "PolicyLog", "low CPU usage: 12.5%"),
            ev(45.0, "SuccessfulRescale", "New size: 3; reason: x"),
            ev(60.0, "SuccessfulRescale", "New size: 4; reason: x"),
            ev(75.0, "PolicyLog", "high CPU usage: 93.0%"),
        ];
        let refs: Vec<&Event> = e.iter().collect();
        let runs = folded(&refs);
        let got: Vec<(f64, f64, usize)> = runs
            .iter()
            .map(|r| (r.first.t, r.last.t, r.count))
            .collect();
        assert_eq!(
            got,
            vec![
                (15.0, 30.0, 2),
                (45.0, 45.0, 1),
                (60.0, 60.0, 1),
                (75.0, 75.0, 1)
            ]
        );
        assert_eq!(shape("a 12.5% b 3"), "a #.#% b #");
    }
}
