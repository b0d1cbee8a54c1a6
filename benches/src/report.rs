//! The figures of one run: medians, ratios oriented so that above 1 means
//! cqrs is better, the spread of the per-pair ratios, the targets; printed as
//! a table or as CSV.

use crate::runner::median;

/// Whether a larger number is better (a rate) or a smaller one (a cost).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Better {
    Higher,
    Lower,
}

/// One figure: ours against a baseline, from the same run.
#[derive(Clone, Debug)]
pub(crate) struct Figure {
    /// `<what>_vs_<baseline>`, the CSV key.
    pub(crate) name: String,
    pub(crate) unit: &'static str,
    pub(crate) better: Better,
    pub(crate) ours: Vec<f64>,
    pub(crate) baseline: Vec<f64>,
    /// The ratio to reach, if the issue sets one.
    pub(crate) target: Option<f64>,
}

impl Figure {
    pub(crate) fn new(
        name: impl Into<String>,
        unit: &'static str,
        better: Better,
        (ours, baseline): (Vec<f64>, Vec<f64>),
    ) -> Self {
        Self {
            name: name.into(),
            unit,
            better,
            ours,
            baseline,
            target: None,
        }
    }

    #[must_use]
    pub(crate) fn target(mut self, ratio: f64) -> Self {
        self.target = Some(ratio);
        self
    }

    fn orient(&self, ours: f64, baseline: f64) -> f64 {
        match self.better {
            Better::Higher => ours / baseline,
            Better::Lower => baseline / ours,
        }
    }

    /// The ratio of the medians, above 1 when ours is better.
    pub(crate) fn ratio(&self) -> f64 {
        self.orient(median(&self.ours), median(&self.baseline))
    }

    /// The lowest and highest ratio of a pair of samples taken side by side.
    fn spread(&self) -> (f64, f64) {
        let ratios: Vec<f64> = self
            .ours
            .iter()
            .zip(&self.baseline)
            .map(|(&o, &b)| self.orient(o, b))
            .collect();
        let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        (lo, hi)
    }

    pub(crate) fn met(&self) -> Option<bool> {
        self.target.map(|t| self.ratio() >= t)
    }
}

fn number(x: f64) -> String {
    if !x.is_finite() {
        return String::from("-");
    }
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

/// Prints the figures as an aligned table.
pub(crate) fn table(figures: &[Figure]) -> String {
    let mut rows = vec![[
        "figure".to_owned(),
        "unit".to_owned(),
        "ours".to_owned(),
        "baseline".to_owned(),
        "ratio".to_owned(),
        "pair range".to_owned(),
        "target".to_owned(),
    ]];
    for f in figures {
        let (lo, hi) = f.spread();
        rows.push([
            f.name.clone(),
            f.unit.to_owned(),
            number(median(&f.ours)),
            number(median(&f.baseline)),
            format!("{:.2}", f.ratio()),
            format!("{lo:.2}-{hi:.2}"),
            match (f.target, f.met()) {
                (Some(t), Some(true)) => format!(">= {t:.2} met"),
                (Some(t), _) => format!(">= {t:.2} MISSED"),
                _ => String::new(),
            },
        ]);
    }
    let widths: Vec<usize> = (0..7)
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            if c == 0 || c == 1 || c == 6 {
                out.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            } else {
                out.push_str(&format!("{cell:>w$}  ", w = widths[c]));
            }
        }
        out = out.trim_end().to_owned();
        out.push('\n');
        if i == 0 {
            out.push_str(&"-".repeat(widths.iter().sum::<usize>() + 12));
            out.push('\n');
        }
    }
    out
}

/// Prints one line per figure: `figure,ours,baseline,ratio`.
pub(crate) fn csv(figures: &[Figure]) -> String {
    let mut out = String::from("figure,ours,baseline,ratio\n");
    for f in figures {
        out.push_str(&format!(
            "{},{},{},{:.3}\n",
            f.name,
            median(&f.ours),
            median(&f.baseline),
            f.ratio()
        ));
    }
    out
}
