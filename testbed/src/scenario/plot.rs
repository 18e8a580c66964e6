//! PNG plots of scenario results, drawn with plotters' bitmap backend and a font compiled
//! into the binary (Ubuntu Light from `epaint_default_fonts`, rasterized by ab_glyph), so
//! neither the build nor a run needs fontconfig or system fonts.
//!
//! - `timeline`: per host of a DC, over the scenario's seconds: which leader it names, its
//!   raft index, how many members it sees alive; the scenario's events as vertical lines.
//! - `bars`: one horizontal bar per host (e.g. seconds until a service is visible in DNS).
//! - `queries`: every timed request of a query load, latency over time, failures marked.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::timeline::{Event, QuerySample, Sample};

/// The one font family the plots use.
pub(crate) const FONT: &str = "sans-serif";
/// Line and leader colors, in order.
const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];
/// "No leader known".
const NONE_COLOR: RGBColor = RGBColor(210, 210, 210);
/// "No answer".
const DOWN_COLOR: RGBColor = RGBColor(60, 60, 60);

type DrawResult<T> = Result<T, String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Registers the font once per process.
pub(crate) fn font() -> DrawResult<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, epaint_default_fonts::UBUNTU_LIGHT)
            .is_ok()
    });
    if *ok {
        Ok(())
    } else {
        Err("the built-in font does not load".into())
    }
}

fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

/// Draws the timeline of `hosts` to `path`.
pub fn timeline(
    path: &Path,
    title: &str,
    hosts: &[String],
    samples: &[Sample],
    events: &[Event],
) -> DrawResult<()> {
    font()?;
    let root = BitMapBackend::new(path, (1280, 960)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, (FONT, 24)).map_err(err)?;
    let t_max = samples.iter().map(|s| s.t).fold(1.0, f64::max) * 1.02;
    let panels = root.split_evenly((3, 1));
    leaders_panel(&panels[0], hosts, samples, events, t_max)?;
    let index = |s: &Sample| s.index.map(|v| v as f64);
    let alive = |s: &Sample| s.members_alive.map(|v| v as f64);
    line_panel(
        &panels[1],
        "raft index",
        hosts,
        samples,
        events,
        t_max,
        &index,
    )?;
    line_panel(
        &panels[2],
        "members alive (as each host sees it)",
        hosts,
        samples,
        events,
        t_max,
        &alive,
    )?;
    root.present().map_err(err)
}

/// One row per host, colored by the leader it names at each moment.
fn leaders_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    hosts: &[String],
    samples: &[Sample],
    events: &[Event],
    t_max: f64,
) -> DrawResult<()> {
    let rows = i32::try_from(hosts.len()).unwrap_or(i32::MAX);
    let mut chart = ChartBuilder::on(area)
        .caption("leader named by each host", (FONT, 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..t_max, (0..rows).into_segmented())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(hosts.len() + 1)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| hosts.get(i).cloned())
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("seconds")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let leaders: Vec<String> = samples
        .iter()
        .filter_map(|s| s.leader.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let leader_color = |s: &Sample| match &s.leader {
        _ if !s.up => DOWN_COLOR,
        Some(l) => color(leaders.iter().position(|x| x == l).unwrap_or(0)),
        None => NONE_COLOR,
    };
    for (row, host) in hosts.iter().enumerate() {
        let mine: Vec<&Sample> = samples.iter().filter(|s| &s.host == host).collect();
        let row = i32::try_from(row).unwrap_or(0);
        let bars = mine.windows(2).map(|w| {
            let band = [
                (w[0].t, SegmentValue::Exact(row)),
                (w[1].t, SegmentValue::Exact(row + 1)),
            ];
            Rectangle::new(band, leader_color(w[0]).filled())
        });
        chart.draw_series(bars).map_err(err)?;
    }
    let mut legend: Vec<(String, RGBColor)> = leaders
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("leader {l}"), color(i)))
        .collect();
    legend.push(("no leader known".into(), NONE_COLOR));
    legend.push(("no answer".into(), DOWN_COLOR));
    for (label, c) in legend {
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, SegmentValue<i32>)>>())
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], c.filled()));
    }
    for e in events {
        let line = [
            (e.t, SegmentValue::Exact(0)),
            (e.t, SegmentValue::Exact(rows)),
        ];
        chart
            .draw_series(LineSeries::new(line, BLACK.stroke_width(2)))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(Text::new(
                e.what.clone(),
                (e.t + t_max * 0.005, SegmentValue::Exact(rows)),
                (FONT, 14).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(err)
}

/// One line per host of `value` over time, events as vertical lines.
fn line_panel(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    caption: &str,
    hosts: &[String],
    samples: &[Sample],
    events: &[Event],
    t_max: f64,
    value: &dyn Fn(&Sample) -> Option<f64>,
) -> DrawResult<()> {
    let y_max = samples.iter().filter_map(value).fold(1.0, f64::max) * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(caption, (FONT, 18))
        .margin(8)
        .x_label_area_size(28)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..t_max, 0f64..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    for (i, host) in hosts.iter().enumerate() {
        let points: Vec<(f64, f64)> = samples
            .iter()
            .filter(|s| &s.host == host)
            .filter_map(|s| Some((s.t, value(s)?)))
            .collect();
        let c = color(i);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(err)?
            .label(host.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], c.stroke_width(2)));
    }
    for e in events {
        chart
            .draw_series(LineSeries::new(
                [(e.t, 0.0), (e.t, y_max)],
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(err)
}

/// Each query of `samples` as a point: x its send time, y its latency (log scale), one
/// color per stream, failed ones as red crosses; events as labelled vertical lines.
pub fn queries(
    path: &Path,
    title: &str,
    samples: &[QuerySample],
    events: &[Event],
) -> DrawResult<()> {
    font()?;
    let root = BitMapBackend::new(path, (1280, 720)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let t_max = samples
        .iter()
        .map(|s| s.t)
        .chain(events.iter().map(|e| e.t))
        .fold(1.0, f64::max)
        * 1.02;
    let y_max = samples.iter().map(|s| s.ms).fold(10.0, f64::max) * 2.0;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..t_max, (0.5f64..y_max).log_scale())
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the scenario began (when the request was sent)")
        .y_desc("milliseconds until the answer (log)")
        .label_style((FONT, 14))
        .draw()
        .map_err(err)?;
    let streams: Vec<String> = samples
        .iter()
        .map(|s| s.stream.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    for (i, stream) in streams.iter().enumerate() {
        let c = color(i);
        let ok = samples
            .iter()
            .filter(|s| &s.stream == stream && s.ok)
            .map(|s| Circle::new((s.t, s.ms.max(0.5)), 2, c.filled()));
        chart
            .draw_series(ok)
            .map_err(err)?
            .label(stream.clone())
            .legend(move |(x, y)| Circle::new((x + 7, y), 4, c.filled()));
    }
    let failed = samples
        .iter()
        .filter(|s| !s.ok)
        .map(|s| Cross::new((s.t, s.ms.max(0.5)), 5, RED.stroke_width(2)));
    chart
        .draw_series(failed)
        .map_err(err)?
        .label("failed (any stream)")
        .legend(|(x, y)| Cross::new((x + 7, y), 5, RED.stroke_width(2)));
    for (i, e) in events.iter().enumerate() {
        chart
            .draw_series(LineSeries::new(
                [(e.t, 0.5), (e.t, y_max)],
                BLACK.stroke_width(1),
            ))
            .map_err(err)?;
        // Labels of events close in time would overlap: three heights in turn.
        let y = y_max / [1.5, 3.0, 6.0][i % 3];
        chart
            .draw_series(std::iter::once(Text::new(
                e.what.clone(),
                (e.t + t_max * 0.003, y),
                (FONT, 13).into_font().color(&BLACK),
            )))
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font((FONT, 13))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)
}

/// One horizontal bar per `(label, value)`; `None` is drawn as "not seen".
pub fn bars(
    path: &Path,
    title: &str,
    x_desc: &str,
    bars: &[(String, Option<f64>)],
) -> DrawResult<()> {
    font()?;
    let height = 160 + 48 * u32::try_from(bars.len()).unwrap_or(20);
    let root = BitMapBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let rows = i32::try_from(bars.len()).unwrap_or(i32::MAX);
    let x_max = bars.iter().filter_map(|b| b.1).fold(0.001, f64::max) * 1.25;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, (FONT, 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(0f64..x_max, (0..rows).into_segmented())
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(bars.len() + 1)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| bars.get(i).map(|b| b.0.clone()))
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc(x_desc)
        .label_style((FONT, 15))
        .draw()
        .map_err(err)?;
    for (i, (_, v)) in bars.iter().enumerate() {
        let row = i32::try_from(i).unwrap_or(0);
        let (text, end, c) = match v {
            Some(v) => (format!("{v:.3}"), *v, color(0)),
            None => ("not seen".to_string(), 0.0, RED),
        };
        let band = [
            (0.0, SegmentValue::Exact(row)),
            (end, SegmentValue::Exact(row + 1)),
        ];
        let mut bar = Rectangle::new(band, c.filled());
        bar.set_margin(6, 6, 0, 0);
        chart.draw_series(std::iter::once(bar)).map_err(err)?;
        let at = (end + x_max * 0.01, SegmentValue::CenterOf(row));
        chart
            .draw_series(std::iter::once(Text::new(
                text,
                at,
                (FONT, 15).into_font().color(&c),
            )))
            .map_err(err)?;
    }
    root.present().map_err(err)
}

#[cfg(test)]
mod tests {
    use super::{bars, timeline};
    use crate::scenario::timeline::{Event, QuerySample, Sample};

    fn sample(t: f64, host: &str, leader: Option<&str>, index: u64) -> Sample {
        Sample {
            t,
            host: host.into(),
            up: true,
            leader: leader.map(str::to_string),
            index: Some(index),
            members_alive: Some(3),
        }
    }

    /// Both plots draw with the built-in font into real PNG files.
    #[test]
    fn draws_pngs_without_system_fonts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hosts = vec!["dc1-s1".to_string(), "dc1-s2".to_string()];
        let samples: Vec<Sample> = (0..20)
            .flat_map(|i| {
                let t = f64::from(i) * 0.25;
                let leader = if i < 8 {
                    Some("dc1-s1")
                } else if i < 12 {
                    None
                } else {
                    Some("dc1-s2")
                };
                [
                    sample(t, "dc1-s1", leader, 10 + u64::from(i as u8)),
                    sample(t, "dc1-s2", leader, 9),
                ]
            })
            .collect();
        let events = vec![Event {
            t: 2.0,
            what: "kill dc1-s1".into(),
        }];
        let t = dir.path().join("t.png");
        timeline(&t, "test timeline", &hosts, &samples, &events).expect("timeline");
        let q = dir.path().join("q.png");
        let queries: Vec<QuerySample> = (0..40)
            .map(|i| QuerySample {
                t: f64::from(i) * 0.1,
                stream: if i % 2 == 0 { "dc1->dc2" } else { "dc1->dc3" }.into(),
                ms: if i > 30 { 3400.0 } else { 4.0 + f64::from(i) },
                ok: i <= 30,
                status: Some(if i > 30 { 500 } else { 200 }),
            })
            .collect();
        super::queries(&q, "test queries", &queries, &events).expect("queries");
        let b = dir.path().join("b.png");
        let data = [
            ("dc1-s1".to_string(), Some(0.12)),
            ("dc1-c1".to_string(), None),
        ];
        bars(&b, "test bars", "seconds", &data).expect("bars");
        for p in [t, q, b] {
            let bytes = std::fs::read(&p).expect("png written");
            assert!(bytes.starts_with(b"\x89PNG"), "{}", p.display());
        }
    }
}
