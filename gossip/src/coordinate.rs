//! Vivaldi network coordinates, as serf computes them (`serf/coordinate`): each agent keeps
//! an 8-dimensional position plus height, error and adjustment, and moves it after every RTT
//! sample so that coordinate distance predicts round-trip time. Pure: no I/O, no clock; the
//! caller feeds `(peer, peer's coordinate, measured rtt)` samples.

use std::collections::HashMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Below this, lengths and errors count as zero (serf's `zeroThreshold`).
const ZERO: f64 = 1.0e-6;

/// Tunables, with serf's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct VivaldiConfig {
    /// Dimensions of the Euclidean part.
    pub dimensionality: usize,
    /// Error ceiling (and the error of a new coordinate).
    pub error_max: f64,
    /// Error-update constant.
    pub ce: f64,
    /// Position-update constant.
    pub cc: f64,
    /// Samples kept for the adjustment term (0 disables it).
    pub adjustment_window: usize,
    /// Minimum height, in seconds.
    pub height_min: f64,
    /// RTT samples per peer whose median is used.
    pub latency_filter_size: usize,
    /// Gravity pulling coordinates back to the origin, in seconds.
    pub gravity_rho: f64,
}

impl Default for VivaldiConfig {
    fn default() -> Self {
        Self {
            dimensionality: 8,
            error_max: 1.5,
            ce: 0.25,
            cc: 0.25,
            adjustment_window: 20,
            height_min: 10.0e-6,
            latency_filter_size: 3,
            gravity_rho: 150.0,
        }
    }
}

/// A network coordinate (Consul's JSON: `Vec`, `Error`, `Adjustment`, `Height`; seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Coordinate {
    /// Euclidean position.
    pub vec: Vec<f64>,
    /// Confidence: lower is better.
    pub error: f64,
    /// Per-node offset learned from samples.
    pub adjustment: f64,
    /// Distance from the access link to the core.
    pub height: f64,
}

impl Coordinate {
    /// A coordinate at the origin with maximal error.
    pub fn new(cfg: &VivaldiConfig) -> Self {
        Self {
            vec: vec![0.0; cfg.dimensionality],
            error: cfg.error_max,
            adjustment: 0.0,
            height: cfg.height_min,
        }
    }

    /// True if every component is finite and the dimensions match `cfg`.
    pub fn is_valid(&self, cfg: &VivaldiConfig) -> bool {
        self.vec.len() == cfg.dimensionality
            && self.vec.iter().all(|v| v.is_finite())
            && self.error.is_finite()
            && self.adjustment.is_finite()
            && self.height.is_finite()
    }

    fn raw_distance(&self, other: &Coordinate) -> f64 {
        magnitude(&diff(&self.vec, &other.vec)) + self.height + other.height
    }

    /// The estimated RTT between two coordinates (serf's `DistanceTo`).
    pub fn distance_to(&self, other: &Coordinate) -> Duration {
        let dist = self.raw_distance(other);
        let adjusted = dist + self.adjustment + other.adjustment;
        let secs = if adjusted > 0.0 { adjusted } else { dist };
        // Finite but absurd coordinates (a client may PUT any) must not panic here.
        Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
    }

    fn apply_force(
        &self,
        cfg: &VivaldiConfig,
        force: f64,
        other: &Coordinate,
        rng: &mut impl FnMut() -> f64,
    ) -> Self {
        let mut ret = self.clone();
        let (unit, mag) = unit_vector_at(&self.vec, &other.vec, rng);
        for (r, u) in ret.vec.iter_mut().zip(&unit) {
            *r += u * force;
        }
        if mag > ZERO {
            ret.height =
                ((ret.height + other.height) * force / mag + ret.height).max(cfg.height_min);
        }
        ret
    }
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn magnitude(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// Unit vector from `b` towards `a` and the distance; a random direction when they coincide.
fn unit_vector_at(a: &[f64], b: &[f64], rng: &mut impl FnMut() -> f64) -> (Vec<f64>, f64) {
    let d = diff(a, b);
    let mag = magnitude(&d);
    if mag > ZERO {
        return (d.iter().map(|x| x / mag).collect(), mag);
    }
    let r: Vec<f64> = (0..a.len()).map(|_| rng() - 0.5).collect();
    let m = magnitude(&r);
    if m > ZERO {
        return (r.iter().map(|x| x / m).collect(), 0.0);
    }
    let mut unit = vec![0.0; a.len()];
    if let Some(first) = unit.first_mut() {
        *first = 1.0;
    }
    (unit, 0.0)
}

/// One agent's coordinate and the state its updates need.
#[derive(Debug, Clone)]
pub struct VivaldiClient {
    cfg: VivaldiConfig,
    coord: Coordinate,
    origin: Coordinate,
    adjustment_samples: Vec<f64>,
    adjustment_index: usize,
    latency: HashMap<String, Vec<f64>>,
}

impl VivaldiClient {
    /// A client at the origin.
    pub fn new(cfg: VivaldiConfig) -> Self {
        let coord = Coordinate::new(&cfg);
        Self {
            origin: coord.clone(),
            adjustment_samples: vec![0.0; cfg.adjustment_window],
            adjustment_index: 0,
            latency: HashMap::new(),
            coord,
            cfg,
        }
    }

    /// The current coordinate.
    pub fn coordinate(&self) -> &Coordinate {
        &self.coord
    }

    /// Forgets a peer's RTT samples (it left).
    pub fn forget(&mut self, node: &str) {
        self.latency.remove(node);
    }

    /// Feeds one RTT sample to `node` whose coordinate is `other`. Invalid input (wrong
    /// dimensions, non-finite values, absurd RTTs) is ignored and reported as `false`.
    /// `rng` yields uniform values in [0, 1) for the rare random direction.
    pub fn update(
        &mut self,
        node: &str,
        other: &Coordinate,
        rtt: Duration,
        mut rng: impl FnMut() -> f64,
    ) -> bool {
        if !other.is_valid(&self.cfg) || rtt > Duration::from_secs(10) {
            return false;
        }
        let rtt = self.filtered_rtt(node, rtt.as_secs_f64());
        self.update_vivaldi(other, rtt, &mut rng);
        self.update_adjustment(other, rtt);
        self.update_gravity(&mut rng);
        if !self.coord.is_valid(&self.cfg) {
            // Numerical trouble: start over rather than spread NaNs through the pool.
            self.coord = Coordinate::new(&self.cfg);
        }
        true
    }

    fn filtered_rtt(&mut self, node: &str, rtt: f64) -> f64 {
        let samples = self.latency.entry(node.to_string()).or_default();
        samples.push(rtt);
        if samples.len() > self.cfg.latency_filter_size.max(1) {
            samples.remove(0);
        }
        let mut sorted = samples.clone();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    }

    fn update_vivaldi(&mut self, other: &Coordinate, rtt: f64, rng: &mut impl FnMut() -> f64) {
        let rtt = rtt.max(ZERO);
        let dist = self.coord.distance_to(other).as_secs_f64();
        let wrongness = (dist - rtt).abs() / rtt;
        let total_error = (self.coord.error + other.error).max(ZERO);
        let weight = self.coord.error / total_error;
        let ce = self.cfg.ce * weight;
        self.coord.error = (ce * wrongness + self.coord.error * (1.0 - ce)).min(self.cfg.error_max);
        let force = self.cfg.cc * weight * (rtt - dist);
        self.coord = self.coord.apply_force(&self.cfg, force, other, rng);
    }

    fn update_adjustment(&mut self, other: &Coordinate, rtt: f64) {
        let window = self.cfg.adjustment_window;
        if window == 0 {
            return;
        }
        self.adjustment_samples[self.adjustment_index] = rtt - self.coord.raw_distance(other);
        self.adjustment_index = (self.adjustment_index + 1) % window;
        self.coord.adjustment = self.adjustment_samples.iter().sum::<f64>() / (2.0 * window as f64);
    }

    fn update_gravity(&mut self, rng: &mut impl FnMut() -> f64) {
        let dist = self.origin.distance_to(&self.coord).as_secs_f64();
        let force = -(dist / self.cfg.gravity_rho).powi(2);
        self.coord = self
            .coord
            .apply_force(&self.cfg, force, &self.origin.clone(), rng);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for a uniform RNG.
    fn lcg(seed: u64) -> impl FnMut() -> f64 {
        let mut s = seed;
        move || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (s >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    #[test]
    fn distance_is_symmetric_and_includes_heights() {
        let cfg = VivaldiConfig::default();
        let mut a = Coordinate::new(&cfg);
        let mut b = Coordinate::new(&cfg);
        a.vec[0] = 0.003;
        b.vec[1] = 0.004;
        let d = a.distance_to(&b).as_secs_f64();
        assert!((d - (0.005 + 2.0 * cfg.height_min)).abs() < 1e-9, "{d}");
        assert_eq!(a.distance_to(&b), b.distance_to(&a));
    }

    #[test]
    fn a_simulated_line_of_nodes_converges_to_its_rtts() {
        // Five nodes on a line, 10 ms apart: each pair's true RTT is 10 ms × their distance.
        let n = 5;
        let truth = |i: usize, j: usize| Duration::from_millis(10 * i.abs_diff(j) as u64);
        let mut clients: Vec<VivaldiClient> = (0..n)
            .map(|_| VivaldiClient::new(VivaldiConfig::default()))
            .collect();
        for round in 0..400 {
            for i in 0..n {
                let j = (i + 1 + round % (n - 1)) % n;
                let other = clients[j].coordinate().clone();
                let mut r = lcg((round * n + i) as u64);
                assert!(clients[i].update(&format!("n{j}"), &other, truth(i, j), &mut r));
            }
        }
        for i in 0..n {
            for j in 0..n {
                if i == j {
                    continue;
                }
                let est = clients[i]
                    .coordinate()
                    .distance_to(clients[j].coordinate())
                    .as_secs_f64();
                let real = truth(i, j).as_secs_f64();
                assert!(
                    (est - real).abs() / real < 0.2,
                    "n{i}->n{j}: estimated {est}, real {real}"
                );
            }
        }
    }

    #[test]
    fn invalid_samples_are_ignored() {
        let cfg = VivaldiConfig::default();
        let mut c = VivaldiClient::new(cfg.clone());
        let mut bad = Coordinate::new(&cfg);
        bad.vec[0] = f64::NAN;
        assert!(!c.update("x", &bad, Duration::from_millis(1), lcg(1)));
        let short = Coordinate {
            vec: vec![0.0; 3],
            ..Coordinate::new(&cfg)
        };
        assert!(!c.update("x", &short, Duration::from_millis(1), lcg(1)));
        assert!(!c.update(
            "x",
            &Coordinate::new(&cfg),
            Duration::from_secs(3600),
            lcg(1)
        ));
        assert_eq!(c.coordinate(), &Coordinate::new(&cfg));
    }
}
