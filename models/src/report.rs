//! What `ip2p-check` prints: the results table, JSON lines, counterexample stories and Mermaid
//! sequence diagrams.

use crate::check::{Row, Step};
use std::fmt::Write as _;

/// The table header's column names, in order.
pub const COLUMNS: [&str; 10] = [
    "model", "variant", "property", "expect", "result", "states", "unique", "depth", "secs",
    "states/s",
];

/// The results as an aligned text table (header, one line per row; a row whose result is not the
/// expected one ends with `UNEXPECTED`).
pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 10]> = rows
        .iter()
        .map(|r| {
            [
                r.model.clone(),
                r.variant.clone(),
                r.property.clone(),
                r.expect.to_string(),
                r.result.to_string(),
                r.states.to_string(),
                r.unique.to_string(),
                r.depth.to_string(),
                format!("{:.2}", r.secs),
                human(r.states_per_sec),
            ]
        })
        .collect();
    let mut widths = COLUMNS.map(str::len);
    for c in &cells {
        for (w, s) in widths.iter_mut().zip(c) {
            *w = (*w).max(s.chars().count());
        }
    }
    // text columns left-aligned, numbers right-aligned
    let numeric = |i: usize| i >= 5;
    let line = |c: &[String], extra: &str| {
        let mut out = String::new();
        for (i, (s, w)) in c.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            if numeric(i) {
                let _ = write!(out, "{s:>w$}");
            } else {
                let _ = write!(out, "{s:<w$}");
            }
        }
        out.push_str(extra);
        out.trim_end().to_string() + "\n"
    };
    let header: Vec<String> = COLUMNS.iter().map(|s| s.to_string()).collect();
    let mut out = line(&header, "");
    for (c, r) in cells.iter().zip(rows) {
        out.push_str(&line(c, if r.ok() { "" } else { "  UNEXPECTED" }));
    }
    out
}

/// The final line under the table: `N checks, M as expected`.
pub fn summary(rows: &[Row]) -> String {
    let ok = rows.iter().filter(|r| r.ok()).count();
    format!(
        "{} check{}, {ok} as expected",
        rows.len(),
        if rows.len() == 1 { "" } else { "s" }
    )
}

/// One row as one line of JSON (without the newline), with at least the fields `model, variant,
/// property, expect, result, states, unique, depth, secs`.
pub fn json_line(row: &Row) -> String {
    // Serializing plain strings, numbers and enums cannot fail; keep a readable fallback anyway.
    serde_json::to_string(row).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// A count or rate in a short human form: `950`, `12.3k`, `4.56M`, `1.20G`.
pub fn human(x: f64) -> String {
    if !x.is_finite() {
        return "-".into();
    }
    let (v, unit) = if x >= 1e9 {
        (x / 1e9, "G")
    } else if x >= 1e6 {
        (x / 1e6, "M")
    } else if x >= 1e3 {
        (x / 1e3, "k")
    } else {
        return format!("{x:.0}");
    };
    if v >= 100.0 {
        format!("{v:.0}{unit}")
    } else if v >= 10.0 {
        format!("{v:.1}{unit}")
    } else {
        format!("{v:.2}{unit}")
    }
}

/// `s` made safe as part of a file name: letters, digits, `-`, `_` and `.` kept, anything else
/// becomes `_`.
pub fn file_part(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if t.is_empty() || t.chars().all(|c| c == '.') {
        "_".into()
    } else {
        t
    }
}

/// The number of step `j` of transition `i` (both from 0): `3` when the transition told one
/// step, `3.1`, `3.2`, … when it told several.
fn step_number(i: usize, j: usize, of: usize) -> String {
    if of == 1 {
        format!("{}", i + 1)
    } else {
        format!("{}.{}", i + 1, j + 1)
    }
}

/// A counterexample as numbered lines of text: the title, one line per step
/// (`  3. n2 -> n3: stabilize`), and the last state's description if any.
pub fn story(title: &str, transitions: &[Vec<Step>], last_state: &str) -> String {
    let mut out = format!("{title}\n");
    for (i, steps) in transitions.iter().enumerate() {
        for (j, s) in steps.iter().enumerate() {
            let n = step_number(i, j, steps.len());
            let who = match &s.peer {
                Some(p) => format!("{} -> {p}", s.actor),
                None => s.actor.clone(),
            };
            let _ = writeln!(out, "  {n:>5}. {who}: {}", one_line(&s.text));
        }
    }
    if !last_state.is_empty() {
        let _ = writeln!(out, "  then: {}", one_line(last_state));
    }
    out
}

/// A counterexample as a Mermaid `sequenceDiagram`: `actors` in order (plus any other actor a
/// step names, in order of appearance), one numbered arrow or note per step, and the last
/// state's description as a note across every participant.
pub fn mermaid(
    title: &str,
    actors: &[String],
    transitions: &[Vec<Step>],
    last_state: &str,
) -> String {
    let mut names: Vec<String> = Vec::new();
    let mut add = |n: &str| {
        if !names.iter().any(|m| m == n) {
            names.push(n.to_string());
        }
    };
    for a in actors {
        add(a);
    }
    for s in transitions.iter().flatten() {
        add(&s.actor);
        if let Some(p) = &s.peer {
            add(p);
        }
    }
    if names.is_empty() {
        names.push("model".into());
    }
    let id = |n: &str| {
        let i = names.iter().position(|m| m == n).unwrap_or(0);
        format!("P{i}")
    };

    let mut out = String::new();
    out.push_str("sequenceDiagram\n");
    let _ = writeln!(out, "    %% {}", one_line(title));
    for (i, n) in names.iter().enumerate() {
        let _ = writeln!(out, "    participant P{i} as {}", escape(n));
    }
    for (i, steps) in transitions.iter().enumerate() {
        for (j, s) in steps.iter().enumerate() {
            let n = step_number(i, j, steps.len());
            let text = escape(&format!("{n}. {}", s.text));
            match &s.peer {
                Some(p) if p != &s.actor => {
                    let _ = writeln!(out, "    {}->>{}: {text}", id(&s.actor), id(p));
                }
                _ => {
                    let _ = writeln!(out, "    Note over {}: {text}", id(&s.actor));
                }
            }
        }
    }
    if !last_state.is_empty() {
        let span = if names.len() == 1 {
            "P0".to_string()
        } else {
            format!("P0,P{}", names.len() - 1)
        };
        let _ = writeln!(out, "    Note over {span}: {}", escape(last_state));
    }
    out
}

/// Text on one line (newlines become `; `).
fn one_line(s: &str) -> String {
    s.lines().collect::<Vec<_>>().join("; ")
}

/// Text made safe inside a Mermaid message or alias: newlines become `<br/>`, and the characters
/// Mermaid's sequence-diagram grammar reads as syntax (`;` ends a statement, `#` starts an entity
/// code) become entity codes.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (i, line) in s.lines().enumerate() {
        if i > 0 {
            out.push_str("<br/>");
        }
        for c in line.chars() {
            match c {
                '#' => out.push_str("#35;"),
                ';' => out.push_str("#59;"),
                c => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_keeps_mermaid_syntax_out_of_text() {
        assert_eq!(escape("a;b#c:d\ne"), "a#59;b#35;c:d<br/>e");
    }

    #[test]
    fn human_units() {
        assert_eq!(human(950.0), "950");
        assert_eq!(human(12_345.0), "12.3k");
        assert_eq!(human(4_560_000.0), "4.56M");
    }

    #[test]
    fn file_part_sanitizes() {
        assert_eq!(file_part("At/Most One"), "At_Most_One");
        assert_eq!(file_part(".."), "_");
    }

    #[test]
    fn mermaid_numbers_steps_and_adds_unknown_actors() {
        let t = vec![
            vec![Step::send("a", "b", "hello")],
            vec![Step::note("c", "x"), Step::note("a", "y")],
        ];
        let m = mermaid("t", &["a".into(), "b".into()], &t, "end");
        assert!(m.contains("sequenceDiagram\n"));
        assert!(m.contains("participant P2 as c"));
        assert!(m.contains("P0->>P1: 1. hello"));
        assert!(m.contains("Note over P2: 2.1. x"));
        assert!(m.contains("Note over P0: 2.2. y"));
        assert!(m.contains("Note over P0,P2: end"));
    }
}
