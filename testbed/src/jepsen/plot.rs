//! The run's timeline as a PNG: every op as a point (x: when it was sent, y: how long its
//! answer took), colored by outcome, one row of panels per op type; the nemesis's faults as
//! shaded spans from fault to repair. Where ops fail or go unknown is where the faults were.

use std::path::Path;

use plotters::prelude::*;

use super::history::{Call, Op, Outcome};
use super::nemesis::Event;
use crate::scenario::plot::{FONT, font};

const OK: RGBColor = RGBColor(44, 160, 44);
const FALSE: RGBColor = RGBColor(255, 127, 14);
const FAIL: RGBColor = RGBColor(150, 150, 150);
const UNKNOWN: RGBColor = RGBColor(214, 39, 40);
const FAULT: RGBColor = RGBColor(31, 119, 180);

/// A panel: its name and which ops it shows.
type Panel = (&'static str, fn(&Call) -> bool);

fn outcome_color(o: &Outcome) -> RGBColor {
    match o {
        Outcome::Read { .. } | Outcome::Done { applied: true } => OK,
        Outcome::Done { applied: false } => FALSE,
        Outcome::Fail { .. } => FAIL,
        Outcome::Unknown { .. } => UNKNOWN,
    }
}

/// Draws `ops` and `events` (a run of `t_max` seconds) to `path`.
pub fn timeline(
    path: &Path,
    title: &str,
    ops: &[Op],
    events: &[Event],
    t_max: f64,
) -> Result<(), String> {
    font()?;
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = BitMapBackend::new(path, (1400, 900)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let root = root.titled(title, (FONT, 22)).map_err(|e| err(&e))?;
    let panels = root.split_evenly((3, 1));
    let spans = fault_spans(events, t_max);
    let rows: [Panel; 3] = [
        ("reads", |c| matches!(c, Call::Read)),
        ("writes", |c| matches!(c, Call::Write { .. })),
        ("CAS", |c| matches!(c, Call::Cas { .. })),
    ];
    for (area, (name, pick)) in panels.iter().zip(rows) {
        let points: Vec<(f64, f64, RGBColor)> = ops
            .iter()
            .filter(|o| pick(&o.call))
            .map(|o| {
                let t = o.invoke_ns as f64 / 1e9;
                let ms = o.complete_ns.saturating_sub(o.invoke_ns) as f64 / 1e6;
                (t, ms.max(0.1), outcome_color(&o.outcome))
            })
            .collect();
        let y_max = points.iter().map(|p| p.1).fold(10.0, f64::max) * 1.5;
        let mut chart = ChartBuilder::on(area)
            .caption(
                format!("{name}: latency (ms, log) — green ok, orange CAS false, grey refused, red unknown; blue: faults"),
                (FONT, 15),
            )
            .margin(8)
            .x_label_area_size(26)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..t_max.max(1.0), (0.1f64..y_max).log_scale())
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .label_style((FONT, 13))
            .draw()
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                spans.iter().map(|&(a, b)| {
                    Rectangle::new([(a, 0.1), (b, y_max)], FAULT.mix(0.15).filled())
                }),
            )
            .map_err(|e| err(&e))?;
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(t, ms, c)| Circle::new((t, ms), 2, c.filled())),
            )
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))
}

/// (start, end) of every fault: from its event to the next repair (or the run's end).
fn fault_spans(events: &[Event], t_max: f64) -> Vec<(f64, f64)> {
    let mut spans = Vec::new();
    let mut open: Option<f64> = None;
    for e in events {
        match (e.fault, open) {
            (Some(_), None) => open = Some(e.t),
            (None, Some(start)) => {
                spans.push((start, e.t.max(start + 0.05)));
                open = None;
            }
            _ => {}
        }
    }
    if let Some(start) = open {
        spans.push((start, t_max));
    }
    spans
}
