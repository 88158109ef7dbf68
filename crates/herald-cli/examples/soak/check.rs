//! Report sections and their checks. A check is enforced now (its failure fails the soak) or
//! waits for behaviour still being built (`Later`): it is judged and printed either way, and
//! `--strict` enforces every check. Tightening a pattern's check once its behaviour has
//! landed is changing its `Later` to `Now` in that pattern's `judge`.

use std::fmt::Write as _;

/// Whether a failed check fails the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Enforce {
    /// Must hold on today's server.
    Now,
    /// Depends on behaviour that has not landed yet; names it.
    Later(&'static str),
}

#[derive(Debug)]
pub(crate) struct Check {
    name: String,
    pass: bool,
    observed: String,
    enforce: Enforce,
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
        enforce: Enforce,
        name: impl Into<String>,
        pass: bool,
        observed: impl Into<String>,
    ) {
        self.checks.push(Check {
            name: name.into(),
            pass,
            observed: observed.into(),
            enforce,
        });
    }
}

/// Whether a check's failure fails the run.
fn enforced(check: &Check, strict: bool) -> bool {
    strict || check.enforce == Enforce::Now
}

fn verdict(check: &Check, strict: bool) -> String {
    match (check.pass, enforced(check, strict), check.enforce) {
        (true, _, Enforce::Now) => "ok".into(),
        (true, _, Enforce::Later(_)) => "ok (not enforced yet)".into(),
        (false, true, _) => "FAIL".into(),
        (false, false, Enforce::Later(what)) => format!("not yet (needs {what})"),
        (false, false, Enforce::Now) => unreachable!("a Now check is always enforced"),
    }
}

/// The whole report, and whether every enforced check passed.
pub(crate) fn render(sections: &[Section], strict: bool) -> (String, bool) {
    let mut out = String::new();
    let (mut passed, mut failed, mut waiting) = (0, 0, 0);
    for section in sections {
        let _ = writeln!(out, "\n== {} ==", section.title);
        for line in &section.lines {
            let _ = writeln!(out, "  {line}");
        }
        for check in &section.checks {
            let _ = writeln!(
                out,
                "  [{}] {}: {}",
                verdict(check, strict),
                check.name,
                check.observed
            );
            match (check.pass, enforced(check, strict)) {
                (true, _) => passed += 1,
                (false, true) => failed += 1,
                (false, false) => waiting += 1,
            }
        }
    }
    if waiting > 0 {
        let _ = writeln!(
            out,
            "\n{waiting} checks failed that wait for behaviour not built yet (skipped; --strict enforces them)"
        );
    }
    // The closing line in the form test runners count.
    let _ = writeln!(
        out,
        "soak: {passed} passed, {failed} failed, {waiting} skipped"
    );
    (out, failed == 0)
}
