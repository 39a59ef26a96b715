//! Latency samples for the latency histogram's tests and bench: a small seeded generator
//! and the three distributions the accuracy tests use, in nanoseconds.
//!
//! Include it with `#[path = "support/latency_samples.rs"] mod latency_samples;` (from a
//! bench, `#[path = "../tests/support/latency_samples.rs"]`).

#![allow(dead_code)] // Each binary uses the part it needs.

/// SplitMix64: a seeded generator of 64-bit words, good enough for test samples.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    /// Uniform in `[low, high]`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low + 1)
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]: ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A distribution of latencies to draw from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Uniform from 1 µs to 100 ms.
    Uniform,
    /// Log-normal: median 1 ms, σ = 1.2 (from about a microsecond to seconds).
    LogNormal,
    /// Bimodal: 90 % around 200 µs (σ 20 µs), 10 % around 50 ms (σ 5 ms): a fast path and
    /// a slow one, as a cache hit and miss.
    Bimodal,
}

impl Shape {
    pub const ALL: [Shape; 3] = [Shape::Uniform, Shape::LogNormal, Shape::Bimodal];

    /// One latency, in nanoseconds (at least 1).
    pub fn sample(self, rng: &mut Rng) -> u64 {
        let nanos = match self {
            Shape::Uniform => return rng.between(1_000, 100_000_000),
            Shape::LogNormal => 1e6 * (1.2 * rng.normal()).exp(),
            Shape::Bimodal => {
                if rng.unit() < 0.9 {
                    200e3 + 20e3 * rng.normal()
                } else {
                    50e6 + 5e6 * rng.normal()
                }
            }
        };
        (nanos.round() as u64).max(1)
    }

    /// `count` latencies drawn with `seed`.
    pub fn samples(self, count: usize, seed: u64) -> Vec<u64> {
        let mut rng = Rng::new(seed);
        (0..count).map(|_| self.sample(&mut rng)).collect()
    }
}

/// The exact value at quantile `q` of `sorted` samples, by HdrHistogram's rank: the sample
/// of rank `max(1, ceil(q · n))`.
pub fn exact_quantile(sorted: &[u64], q: f64) -> u64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
