//! The simulator's random numbers: SplitMix64 (Steele, Lea and Flood), one independent stream per
//! SIM, so that a fleet is the same for a seed whatever order its SIMs are made in, and the crate
//! needs no random-number dependency.

/// The increment of SplitMix64's state (2^64 divided by the golden ratio).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: a 64-bit state advanced by a constant and mixed. Fast, statistically sound for
/// simulation (it passes BigCrush), not for anything secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

/// SplitMix64's output function: a bijective mix of 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    /// The generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// The generator of stream `stream` (a SIM's number, say) under `seed`. Streams start at
    /// unrelated points of the generator's cycle: seeds `seed + k · GOLDEN` would replay each
    /// other's numbers one step apart.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        Self::new(mix(seed ^ mix(stream.wrapping_add(GOLDEN))))
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in (0, 1), never 0 nor 1 (the logarithm in [`SplitMix64::normal`] needs that).
    pub fn unit(&mut self) -> f64 {
        // The top 53 bits: exactly representable.
        ((self.next_u64() >> 11) as f64 + 0.5) / (1_u64 << 53) as f64
    }

    /// Uniform in (`low`, `high`).
    pub fn between(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform in `0..n`; 0 for `n` = 0.
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // `unit` < 1, so the product is below `n`; the `min` guards the rounding of huge `n`.
        ((self.unit() * n as f64) as usize).min(n - 1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal, by Box–Muller (one of the pair; the other is dropped for simplicity).
    pub fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.unit(), self.unit());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// Log-normal with median 1: exp(`sigma` × a standard normal).
    pub fn log_normal(&mut self, sigma: f64) -> f64 {
        (sigma * self.normal()).exp()
    }
}
