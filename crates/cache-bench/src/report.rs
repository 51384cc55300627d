//! Medians, ratios and the Markdown tables the harness prints.

use std::fmt;
use std::time::Duration;

/// The measurements of one throughput case over all rounds.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    /// The case's name, as printed in the table.
    pub(crate) name: String,
    /// Operations per second, one per round, in round order.
    pub(crate) rounds: Vec<f64>,
    /// Median latency over every sampled operation of every round.
    pub(crate) p50: Duration,
    /// 99th percentile latency, likewise.
    pub(crate) p99: Duration,
    /// The share of reads served in process over the measured rounds (a bounded cache's
    /// hits, a tiered cache's L1 hits), for the cases that count them.
    pub(crate) hit_ratio: Option<f64>,
}

/// The median of `values` (the upper one of an even count); NaN when empty.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The median over rounds of `case / anchor` in the same round: a slow spell of the machine
/// slows both sides of a pair alike, so this is steadier than a ratio of medians.
pub(crate) fn ratio(case: &[f64], anchor: &[f64]) -> f64 {
    let per_round: Vec<f64> = case.iter().zip(anchor).map(|(c, a)| c / a).collect();
    median(&per_round)
}

/// A latency with a unit that keeps two or three significant digits: `85ns`, `1.2µs`,
/// `304µs`, `13ms`.
pub(crate) fn format_latency(d: Duration) -> String {
    let nanos = d.as_nanos() as f64;
    let (value, unit) = if nanos < 1e3 {
        (nanos, "ns")
    } else if nanos < 1e6 {
        (nanos / 1e3, "µs")
    } else if nanos < 1e9 {
        (nanos / 1e6, "ms")
    } else {
        (nanos / 1e9, "s")
    };
    if value < 10.0 && unit != "ns" {
        format!("{value:.1}{unit}")
    } else {
        format!("{value:.0}{unit}")
    }
}

/// A share as the tables show it: `83.4%`.
pub(crate) fn format_percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// A ratio as the tables show it: `1.02x`.
pub(crate) fn format_ratio(r: f64) -> String {
    format!("{r:.2}x")
}

/// A Markdown pipe table: the first column left-aligned, the others right-aligned, padded so
/// it also reads well in a terminal.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles and no rows.
    pub(crate) fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are left empty, extra ones dropped.
    pub(crate) fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) {
        let mut row: Vec<String> = cells.into_iter().map(Into::into).collect();
        row.resize(self.header.len(), String::new());
        self.rows.push(row);
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|c| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|row| row[c].chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |f: &mut fmt::Formatter<'_>, cells: &[String]| {
            write!(f, "|")?;
            for (c, (cell, &width)) in cells.iter().zip(&widths).enumerate() {
                if c == 0 {
                    write!(f, " {cell:<width$} |")?;
                } else {
                    write!(f, " {cell:>width$} |")?;
                }
            }
            writeln!(f)
        };
        line(f, &self.header)?;
        write!(f, "|")?;
        for (c, &width) in widths.iter().enumerate() {
            if c == 0 {
                write!(f, "{}|", "-".repeat(width + 2))?;
            } else {
                write!(f, "{}:|", "-".repeat(width + 1))?;
            }
        }
        writeln!(f)?;
        for row in &self.rows {
            line(f, row)?;
        }
        Ok(())
    }
}

/// The throughput table of a group: ops/s of the median round, p50, p99, the share of reads
/// served in process when a case counts it, and the median per-round ratio to each anchor
/// (given as an index into `series` and a column title).
pub(crate) fn throughput_table(series: &[Series], anchors: &[(usize, &str)]) -> Table {
    let mut header = vec![
        "case".to_owned(),
        "ops/s".to_owned(),
        "p50".to_owned(),
        "p99".to_owned(),
    ];
    let hit_ratios = series.iter().any(|s| s.hit_ratio.is_some());
    if hit_ratios {
        header.push("reads served in process".to_owned());
    }
    header.extend(anchors.iter().map(|(_, title)| format!("vs {title}")));
    let mut table = Table::new(header);
    for s in series {
        let mut row = vec![
            s.name.clone(),
            format!("{:.0}", median(&s.rounds)),
            format_latency(s.p50),
            format_latency(s.p99),
        ];
        if hit_ratios {
            row.push(s.hit_ratio.map_or(String::new(), format_percent));
        }
        row.extend(
            anchors
                .iter()
                .map(|&(a, _)| format_ratio(ratio(&s.rounds, &series[a].rounds))),
        );
        table.row(row);
    }
    table
}

/// One of the figures, measured: holds when `value` is on the right side of `bound`.
#[derive(Debug, Clone)]
pub(crate) struct Figure {
    /// What is compared, e.g. `MemoryCache / moka`.
    pub(crate) what: String,
    /// The measured value, in the figure's unit.
    pub(crate) value: f64,
    /// The bound the issue sets.
    pub(crate) bound: f64,
    /// `true` when the value must be at least the bound, `false` when at most.
    pub(crate) at_least: bool,
    /// The unit suffix: `x` for ratios, ` points` for hit-ratio differences.
    pub(crate) unit: &'static str,
}

impl Figure {
    /// Whether the measured value meets the bound.
    pub(crate) fn holds(&self) -> bool {
        if self.at_least {
            self.value >= self.bound
        } else {
            self.value <= self.bound
        }
    }
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.holds() { "PASS " } else { "SHORT" };
        let op = if self.at_least { ">=" } else { "<=" };
        write!(
            f,
            "{verdict} {}: {:.2}{} (target {op} {:.2}{})",
            self.what, self.value, self.unit, self.bound, self.unit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_takes_the_middle_value() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn ratio_is_the_median_of_per_round_ratios() {
        // Round 2 is a slow spell for both sides: its ratio is still 2.
        let case = [200.0, 20.0, 300.0];
        let anchor = [100.0, 10.0, 100.0];
        assert_eq!(ratio(&case, &anchor), 2.0);
    }

    #[test]
    fn latencies_keep_two_or_three_digits() {
        assert_eq!(format_latency(Duration::from_nanos(85)), "85ns");
        assert_eq!(format_latency(Duration::from_nanos(1_234)), "1.2µs");
        assert_eq!(format_latency(Duration::from_micros(304)), "304µs");
        assert_eq!(format_latency(Duration::from_micros(12_600)), "13ms");
        assert_eq!(format_latency(Duration::from_secs(2)), "2.0s");
    }

    #[test]
    fn table_renders_as_aligned_markdown() {
        let mut t = Table::new(["case", "ops/s"]);
        t.row(["raw", "100"]);
        t.row(["MemoryCache", "95"]);
        let want = "\
| case        | ops/s |
|-------------|------:|
| raw         |   100 |
| MemoryCache |    95 |
";
        assert_eq!(t.to_string(), want);
    }

    #[test]
    fn throughput_table_shows_ratios_to_each_anchor() {
        let s = |name: &str, rounds: &[f64]| Series {
            name: name.into(),
            rounds: rounds.to_vec(),
            p50: Duration::from_nanos(50),
            p99: Duration::from_micros(2),
            hit_ratio: None,
        };
        let series = [
            s("anchor", &[10.0, 20.0, 30.0]),
            s("fast", &[20.0, 40.0, 90.0]),
        ];
        let text = throughput_table(&series, &[(0, "anchor")]).to_string();
        let last = text.lines().last().unwrap_or_default();
        assert!(last.contains("| fast"), "{text}");
        assert!(last.contains("40 |"), "{text}");
        assert!(last.contains("2.00x"), "{text}");
        assert!(last.contains("50ns") && last.contains("2.0µs"), "{text}");
        assert!(!text.contains("in process"), "{text}");
    }

    #[test]
    fn throughput_table_shows_hit_ratios_where_a_case_counts_them() {
        let s = |name: &str, hit_ratio| Series {
            name: name.into(),
            rounds: vec![10.0],
            p50: Duration::from_nanos(50),
            p99: Duration::from_micros(2),
            hit_ratio,
        };
        let series = [s("remote", None), s("tiered", Some(0.8346))];
        let text = throughput_table(&series, &[(0, "remote")]).to_string();
        assert!(text.contains("reads served in process"), "{text}");
        let last = text.lines().last().unwrap_or_default();
        assert!(last.contains("83.5%"), "{text}");
    }

    #[test]
    fn figures_say_pass_or_short() {
        let f = |value| Figure {
            what: "a / b".into(),
            value,
            bound: 0.9,
            at_least: true,
            unit: "x",
        };
        assert_eq!(f(1.01).to_string(), "PASS  a / b: 1.01x (target >= 0.90x)");
        assert!(f(0.5).to_string().starts_with("SHORT"));
        let memory = |value| Figure {
            at_least: false,
            bound: 1.5,
            ..f(value)
        };
        assert!(memory(1.2).holds());
        assert!(!memory(1.6).holds());
    }
}
