//! The hit-ratio chart: hit ratio against capacity, one panel per trace shape, one line per
//! cache, as an SVG file.

use std::path::Path;

use plotters::prelude::*;

use crate::groups::CHART_CAPACITIES;
use crate::hit_ratio::Kind;
use crate::traces::TraceSpec;
use crate::workload::Result;

/// Where the chart goes unless `--chart` says otherwise (relative to the working directory).
pub(crate) const DEFAULT_PATH: &str = "target/cache-bench/hit-ratio.svg";

/// One panel: a trace shape and each cache's (capacity %, hit ratio %) points.
#[derive(Debug)]
pub(crate) struct Panel {
    /// The panel's title.
    pub(crate) title: String,
    /// One line per cache.
    pub(crate) lines: Vec<(Kind, Vec<(f64, f64)>)>,
}

/// The title of the panel of `spec`'s shape, at a tenth of its keys.
pub(crate) fn panel_title(spec: &TraceSpec) -> String {
    format!("{}, {}k keys", spec.shape_name, spec.keys / 10_000)
}

/// The line colour of a cache.
fn colour(kind: Kind) -> RGBColor {
    match kind {
        Kind::MemoryCache => RGBColor(214, 39, 40),
        Kind::Moka => RGBColor(31, 119, 180),
        Kind::MokaLru => RGBColor(127, 127, 127),
        Kind::QuickCache => RGBColor(44, 160, 44),
    }
}

/// Writes `panels` to `path` (creating its directory), two columns of panels.
pub(crate) fn write(path: &Path, panels: &[Panel]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let rows = panels.len().div_ceil(2).max(1);
    let size = (1000, 340 * u32::try_from(rows).unwrap_or(3));
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let root = root.titled(
        "Hit ratio against capacity (% of the keys); get, then set on a miss",
        ("sans-serif", 20),
    )?;
    let cells = root.split_evenly((rows, 2));
    let x_max = CHART_CAPACITIES.last().copied().unwrap_or(50.0);
    for (panel, area) in panels.iter().zip(cells.iter()) {
        let mut chart = ChartBuilder::on(area)
            .caption(&panel.title, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(32)
            .y_label_area_size(40)
            .build_cartesian_2d(0f64..x_max, 0f64..100f64)?;
        chart
            .configure_mesh()
            .x_desc("capacity, % of keys")
            .y_desc("hit ratio, %")
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        for (kind, points) in &panel.lines {
            let style = colour(*kind).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.iter().copied(), style))?
                .label(kind.name())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], style));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK.mix(0.3))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
