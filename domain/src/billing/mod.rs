//! Billing: money, rate cards and rating. See `docs/billing.md` for the rules a bill follows.

pub mod adjustment;
pub mod invoice;
pub mod money;
pub mod rate_card;
pub mod rating;

pub use money::{Cost, Currency, Price};
pub use rate_card::{
    BillingPeriod, RateCard, RateCardKind, RateCardTerms, RateCardVersion, TariffOverride, Zone, ZonePrice,
};
pub use rating::{ActiveSimMonth, BillableSim, RatingJob, RatingRun, RatingTotals, RunStatus};
