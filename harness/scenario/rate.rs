//! The load stages as a curve: contiguous linear pieces from t = 0, the
//! offered rate at any instant, when the load stops, and the curve, spacing
//! and users plan the load engines take.

use std::time::Duration;

use super::{Load, Loaded, Spacing, Stage};
use crate::error::InputError;

/// A linear piece of the offered-rate curve, in experiment seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RatePiece {
    pub start: f64,
    pub end: f64,
    pub from: f64,
    pub to: f64,
    pub label: String,
}
impl Load {
    /// The stages as contiguous linear pieces from t = 0 and rate 0 (or 0
    /// users: the pieces' values are users for the closed model).
    pub fn pieces(&self) -> Vec<RatePiece> {
        let unit = if self.is_users() { " users" } else { "" };
        let mut t = 0.0;
        let mut rate = 0.0;
        let mut out = Vec::new();
        for s in &self.stages {
            let d = s.duration().as_secs_f64();
            let (from, to) = match s {
                Stage::Ramp { to, .. } => (rate, to.0),
                Stage::Hold { .. } => (rate, rate),
                Stage::Step { rate: r, .. } => (r.0, r.0),
            };
            out.push(RatePiece {
                start: t,
                end: t + d,
                from,
                to,
                label: s.label(unit),
            });
            t += d;
            rate = to;
        }
        out
    }

    /// When the load stops: the last instant the offered rate (or, for the
    /// closed model, the user count) is above zero.
    pub fn load_stop(&self) -> f64 {
        self.pieces()
            .iter()
            .rev()
            .find(|p| p.from > 0.0 || p.to > 0.0)
            .map(|p| p.end)
            .unwrap_or(0.0)
    }

    pub fn total(&self) -> f64 {
        self.pieces().last().map(|p| p.end).unwrap_or(0.0)
    }

    /// Offered rate and stage label at experiment time `t`.
    pub fn rate_at(&self, t: f64) -> (f64, String) {
        for p in self.pieces() {
            if t < p.end || (p.end == p.start && t <= p.end) {
                if t < p.start {
                    break;
                }
                let f = if p.end > p.start {
                    (t - p.start) / (p.end - p.start)
                } else {
                    1.0
                };
                return (p.from + (p.to - p.from) * f, p.label);
            }
        }
        (0.0, "after load".into())
    }
}

impl Loaded {
    /// The load stages as the engine's rate curve (shared by every backend).
    pub fn rate_curve(&self) -> Result<crate::load::RateCurve, InputError> {
        if self.scenario.load.is_users() {
            // Stages count users here; read as a rate they would mean something else.
            return Err(self.err(
                "load.model",
                "the `users` model has no request-rate curve; it runs on `--backend local`",
            ));
        }
        let segments = self
            .scenario
            .load
            .pieces()
            .into_iter()
            // A zero-length stage only sets the level the next ramp starts from.
            .filter(|p| p.end > p.start)
            .map(|p| crate::load::Segment {
                start: p.start,
                end: p.end,
                from_rate: p.from,
                to_rate: p.to,
            })
            .collect();
        crate::load::RateCurve::new(segments)
            .map_err(|e| InputError::new(&self.path, e.to_string()).field("load.stages"))
    }

    /// The users model's stages as Goose test-plan steps: each piece reaches
    /// its user count linearly over its duration (a hold keeps it).
    pub fn users_plan(&self) -> Vec<crate::load::closed::PlanStep> {
        self.scenario
            .load
            .pieces()
            .into_iter()
            .map(|p| crate::load::closed::PlanStep {
                // Validation makes these whole numbers within MAX_USERS.
                users: p.to.round() as usize,
                over: Duration::from_secs_f64(p.end - p.start),
            })
            .collect()
    }

    /// The engine's spacing; Poisson draws from `seed`.
    pub fn spacing(&self, seed: u64) -> crate::load::Spacing {
        match self.scenario.load.spacing.unwrap_or_default() {
            Spacing::Uniform => crate::load::Spacing::Uniform,
            Spacing::Poisson => crate::load::Spacing::Poisson { seed },
        }
    }
}
