//! When a polled source (the metrics API, Prometheus) starts or stops
//! failing: the record says so once per outage, not once per run and not
//! once per poll, so a gap in a series has its cause and its end beside it.

/// Whether the source was failing at the last look.
#[derive(Debug, Default)]
pub(super) struct Outage {
    failing: bool,
}

#[derive(Debug, PartialEq)]
pub(super) enum Change<'a> {
    /// It fails from now on, with this error.
    Began(&'a str),
    /// It answers again.
    Ended,
}

impl Outage {
    /// `error` is the source's last error, `None` once it answered.
    pub(super) fn look<'a>(&mut self, error: Option<&'a str>) -> Option<Change<'a>> {
        match (error, self.failing) {
            (Some(e), false) => {
                self.failing = true;
                Some(Change::Began(e))
            }
            (None, true) => {
                self.failing = false;
                Some(Change::Ended)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_change_per_outage() {
        let mut o = Outage::default();
        assert_eq!(o.look(None), None);
        assert_eq!(o.look(Some("503")), Some(Change::Began("503")));
        assert_eq!(o.look(Some("timeout")), None);
        assert_eq!(o.look(None), Some(Change::Ended));
        assert_eq!(o.look(None), None);
        assert_eq!(o.look(Some("404")), Some(Change::Began("404")));
    }
}
