//! Text tables as Consul's CLI prints them: `columnize` (two-space glue, last column unpadded)
//! and Go's `text/tabwriter` with padding 6. Pure formatting, no I/O.

/// Formats rows like `github.com/ryanuber/columnize` with Consul's settings: every column but
/// the last is padded to its widest cell, columns are joined by two spaces, cells are trimmed,
/// and there is no trailing newline.
pub(crate) fn columnize(rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<&str>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.trim()).collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            let w = cell.chars().count();
            match widths.get_mut(i) {
                Some(max) => *max = (*max).max(w),
                None => widths.push(w),
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                let pad = widths[i] - cell.chars().count();
                out.extend(std::iter::repeat_n(' ', pad + 2));
            }
        }
        out.push('\n');
    }
    out.pop();
    out
}

/// Formats `label<TAB>value` rows like Go's `tabwriter.NewWriter(w, 0, 2, 6, ' ', 0)`: the
/// first column is padded to its widest cell plus 6 spaces.
pub(crate) fn tabwrite(rows: &[(String, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0)
        + 6;
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}{v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(cells: &[&str]) -> Vec<String> {
        cells.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn columnize_pads_all_but_the_last_column() {
        let out = columnize(&[
            row(&["Node", "Address", "Status"]),
            row(&["alpha-long", "10.0.0.1:8301", "alive"]),
        ]);
        assert_eq!(
            out,
            "Node        Address        Status\nalpha-long  10.0.0.1:8301  alive"
        );
    }

    #[test]
    fn tabwrite_uses_go_padding() {
        let out = tabwrite(&[
            ("Key".into(), "foo".into()),
            ("CreateIndex".into(), "5".into()),
        ]);
        assert_eq!(out, "Key              foo\nCreateIndex      5");
    }
}
