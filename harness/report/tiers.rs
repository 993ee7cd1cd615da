//! A run with a gateway tier: each tier's pods, each tier's load per ready
//! pod against its HPA's target, and the paper's Fig. 8, the gateway's
//! total CPU usage against its total CPU limit. Absent for runs of one tier.

use std::fmt::Write as _;

use super::charts::{self, Axis, HLine, Scale, Series, Stroke, TimeChart, W};
use super::html::figure;
use super::{esc, num};
use crate::prepared::SEED_MAX_GATEWAY_INSTANCES;
use crate::recorder::{HpaSample, PodSample, Replicas, RunData, TierMeta};
use plotters::style::RGBColor;

/// One tier in one sample.
pub(super) struct At<'a> {
    pub t: f64,
    pub replicas: &'a Replicas,
    pub pods: &'a [PodSample],
    pub hpa: Option<&'a HpaSample>,
}

/// A tier's samples: the main fields for the scale target, its entry in
/// `tiers` for the other.
pub(super) fn samples<'a>(run: &'a RunData, tier: &TierMeta) -> Vec<At<'a>> {
    run.samples
        .iter()
        .filter_map(|s| {
            if tier.target {
                return Some(At {
                    t: s.t,
                    replicas: &s.replicas,
                    pods: &s.pods,
                    hpa: s.hpa.as_ref(),
                });
            }
            let x = s.tiers.iter().find(|x| x.deployment == tier.deployment)?;
            Some(At {
                t: s.t,
                replicas: &x.replicas,
                pods: &x.pods,
                hpa: x.hpa.as_ref(),
            })
        })
        .collect()
}

/// Requests per second per ready pod: what the tier served over how many
/// pods were Ready to serve it (NaN when none was).
pub(super) fn qps_per_ready_pod(a: &At) -> f64 {
    if a.replicas.ready <= 0 {
        return f64::NAN;
    }
    a.pods.iter().map(|p| p.qps).sum::<f64>() / f64::from(a.replicas.ready)
}

/// The tier's HPA target for a per-pod QPS metric, if it has one.
fn qps_target(samples: &[At]) -> Option<f64> {
    samples.iter().rev().find_map(|a| {
        a.hpa?
            .metrics
            .iter()
            .find(|m| charts::is_qps_metric(m) && m.target.is_finite())
            .map(|m| m.target)
    })
}

const GATEWAY: RGBColor = RGBColor(234, 88, 12);
const BACKEND: RGBColor = RGBColor(37, 99, 235);
const LIMIT: RGBColor = RGBColor(220, 38, 38);

fn color(t: &TierMeta) -> RGBColor {
    if t.role == "gateway" {
        GATEWAY
    } else {
        BACKEND
    }
}

fn label(t: &TierMeta) -> String {
    format!("{} ({})", t.role, t.deployment)
}

/// Ready and desired pods of each tier.
fn pods_chart(run: &RunData) -> TimeChart {
    let mut c = TimeChart::new(run, W, 300, Axis::new("pods", Scale::Count, "")).with_context(run);
    for t in &run.meta.tiers {
        let s = samples(run, t);
        c.series.push(
            Series::new(format!("{} ready", label(t)), color(t), Stroke::Step)
                .width(3)
                .points(
                    s.iter()
                        .map(|a| (a.t, f64::from(a.replicas.ready)))
                        .collect(),
                ),
        );
        if t.hpa.is_some() {
            c.series.push(
                Series::new(
                    format!("{} desired (HPA)", label(t)),
                    color(t),
                    Stroke::StepDashed,
                )
                .points(
                    s.iter()
                        .map(|a| (a.t, f64::from(a.replicas.desired)))
                        .collect(),
                ),
            );
        }
    }
    c
}

/// Each tier's requests per ready pod, with its HPA's per-pod QPS target.
fn load_chart(run: &RunData) -> TimeChart {
    let mut c = TimeChart::new(
        run,
        W,
        330,
        Axis::new("requests / s per ready pod", Scale::Linear, ""),
    )
    .with_context(run);
    for t in &run.meta.tiers {
        let s = samples(run, t);
        c.series.push(
            Series::new(
                format!("{} per ready pod", label(t)),
                color(t),
                Stroke::Solid,
            )
            .width(1)
            .points(s.iter().map(|a| (a.t, qps_per_ready_pod(a))).collect()),
        );
        if let Some(target) = qps_target(&s) {
            c.hlines.push(HLine {
                y: target,
                label: format!("{} target {}", t.role, num(target, 2)),
                color: color(t),
            });
        }
    }
    c
}

/// The paper's Fig. 8: the gateway's CPU, all instances together, against
/// the sum of their CPU limits.
fn cpu_chart(run: &RunData, gw: &TierMeta) -> TimeChart {
    let mut c = TimeChart::new(
        run,
        W,
        330,
        Axis::new("CPU, millicores", Scale::Linear, "m"),
    )
    .with_context(run);
    let s = samples(run, gw);
    c.series.push(
        Series::new("total CPU usage", GATEWAY, Stroke::Solid)
            .width(2)
            .points(
                s.iter()
                    .map(|a| (a.t, a.pods.iter().map(|p| p.cpu_millicores).sum()))
                    .collect(),
            ),
    );
    if let Some(limit) = gw.cpu_limit_millicores {
        c.series.push(
            Series::new("total CPU limit", LIMIT, Stroke::StepDashed).points(
                s.iter()
                    .map(|a| (a.t, limit * f64::from(a.replicas.current)))
                    .collect(),
            ),
        );
    }
    c
}

pub(super) fn section(h: &mut String, run: &RunData) -> anyhow::Result<()> {
    if run.meta.tiers.is_empty() {
        return Ok(());
    }
    h.push_str("<section id=\"tiers\">\n<h2>The gateway tier and the backend</h2>\n");
    h.push_str("<p class=\"sub\">The load goes to the gateway's Service, which balances each request over the Ready gateway instances; each instance routes it to a Ready backend pod. Each tier has its own pods and, where one scales it, its own HPA. Fig. 7 above is the tier the scenario's HPA scales.</p>\n");
    if let Some(gw) = run.meta.tiers.iter().find(|t| t.role == "gateway") {
        if let Some(max) = gw.max_replicas.filter(|m| *m > SEED_MAX_GATEWAY_INSTANCES) {
            writeln!(
                h,
                "<p class=\"banner\">The gateway's HPA {} may scale it to {max} instances, outside seed 001's node range (at most {SEED_MAX_GATEWAY_INSTANCES}).</p>",
                esc(gw.hpa.as_deref().unwrap_or_default())
            )?;
        }
    }
    figure(
        h,
        &pods_chart(run),
        "Ready and desired pods of each tier",
        "Ready pods of each tier (solid) and, for a tier an HPA scales, the HPA's desired replicas (dashed).",
    )?;
    figure(
        h,
        &load_chart(run),
        "Requests per ready pod of each tier against its HPA target",
        "What each tier served per sample over its Ready pods; a horizontal line is that tier's HPA target for QPS per pod.",
    )?;
    if let Some(gw) = run.meta.tiers.iter().find(|t| t.role == "gateway") {
        h.push_str("<h3>Fig. 8 of the paper — the gateway's CPU usage and limit</h3>\n");
        let caption = match gw.cpu_limit_millicores {
            Some(l) => format!(
                "All gateway instances' CPU together, against their limits together ({} per instance × instances that exist).",
                num(l, 0) + "m"
            ),
            None => "All gateway instances' CPU together; the pod template sets no CPU limit, so none is drawn.".into(),
        };
        figure(
            h,
            &cpu_chart(run, gw),
            "The gateway's total CPU usage against its total CPU limit",
            &caption,
        )?;
    }
    h.push_str("</section>\n");
    Ok(())
}
