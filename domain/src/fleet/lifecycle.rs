//! Explicit transition tables. Each lifecycle lists, per state, the states it may move to; nothing
//! else decides whether a transition is allowed.

use std::fmt::Display;

use crate::{Error, Result};

/// A state machine whose transitions are one table.
pub trait Lifecycle: Copy + Eq + Display + 'static {
    /// What the thing is called in messages ("SIM", "device").
    const SUBJECT: &'static str;
    /// Every state, in display order.
    fn all() -> &'static [Self];
    /// The states this one may move to.
    fn next(self) -> &'static [Self];

    fn is_final(self) -> bool {
        self.next().is_empty()
    }

    /// `Ok` when `self → to` is in the table; otherwise a `Conflict` naming the current state,
    /// the asked one and the allowed ones.
    fn check(self, to: Self) -> Result<()> {
        if self.next().contains(&to) {
            return Ok(());
        }
        let allowed = if self.is_final() {
            format!("{self} is final; no transition is allowed")
        } else {
            format!(
                "allowed from {self}: {}",
                self.next()
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Err(Error::Conflict(format!(
            "{} cannot go from {self} to {to}; {allowed}",
            Self::SUBJECT
        )))
    }
}

/// Parses a state name (case-insensitive, `-` for `_`), naming the allowed values on error.
pub fn parse_state<S: Lifecycle>(s: &str, field: &str) -> Result<S> {
    let wanted = s.trim().to_ascii_uppercase().replace('-', "_");
    S::all()
        .iter()
        .copied()
        .find(|x| x.to_string() == wanted)
        .ok_or_else(|| {
            Error::invalid(
                field,
                format!(
                    "'{s}' is not a {} state; allowed: {}",
                    S::SUBJECT,
                    S::all()
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
}
