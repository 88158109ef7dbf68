//! Report sections and their checks: every check is judged and printed, and a failed one
//! fails the soak.

use std::fmt::Write as _;

#[derive(Debug)]
pub(crate) struct Check {
    name: String,
    pass: bool,
    observed: String,
}

/// One part of the report: what was observed, then the checks.
#[derive(Debug)]
pub(crate) struct Section {
    title: String,
    lines: Vec<String>,
    checks: Vec<Check>,
}

impl Section {
    pub(crate) fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            lines: Vec::new(),
            checks: Vec::new(),
        }
    }

    /// An observation.
    pub(crate) fn line(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// A check: `name` states the expectation, `observed` what was seen.
    pub(crate) fn check(
        &mut self,
        name: impl Into<String>,
        pass: bool,
        observed: impl Into<String>,
    ) {
        self.checks.push(Check {
            name: name.into(),
            pass,
            observed: observed.into(),
        });
    }
}

/// The whole report, and whether every check passed.
pub(crate) fn render(sections: &[Section]) -> (String, bool) {
    let mut out = String::new();
    let (mut passed, mut failed) = (0, 0);
    for section in sections {
        let _ = writeln!(out, "\n== {} ==", section.title);
        for line in &section.lines {
            let _ = writeln!(out, "  {line}");
        }
        for check in &section.checks {
            let verdict = if check.pass { "ok" } else { "FAIL" };
            let _ = writeln!(out, "  [{verdict}] {}: {}", check.name, check.observed);
            if check.pass {
                passed += 1;
            } else {
                failed += 1;
            }
        }
    }
    // The closing line in the form test runners count.
    let _ = writeln!(out, "soak: {passed} passed, {failed} failed");
    (out, failed == 0)
}
