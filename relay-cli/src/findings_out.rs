//! The verdict of a review (one peer or several) and the formats its findings leave relay in:
//! a readable summary, JSON, SARIF 2.1.0, reviewdog's rdjsonl, and GitHub workflow commands.

use std::collections::BTreeMap;
use std::io::Write as _;

use relay_core::exit;
use relay_core::review::Level;
use serde::Serialize;
use serde_json::json;
use serde_sarif::sarif;

use crate::review::{PeerReview, Place, Reported};

/// How the findings are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The header line and a readable summary.
    Text,
    /// The whole report as JSON.
    Json,
    /// SARIF 2.1.0 (GitHub code scanning, reviewdog -f=sarif, IDE viewers).
    Sarif,
    /// reviewdog's diagnostic format, one JSON object per line.
    Rdjsonl,
    /// GitHub Actions workflow commands (::error file=...), the most severe first.
    Github,
}

/// `--fail-on`: the level from which a finding fails the review.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    Error,
    Warning,
    Note,
}

impl FailOn {
    fn level(self) -> Level {
        match self {
            FailOn::Error => Level::Error,
            FailOn::Warning => Level::Warning,
            FailOn::Note => Level::Note,
        }
    }
}

/// A review's result: every peer's review, the findings grouped across them, the verdict.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `pass`, `fail`, or `undecided` (too few peers answered to tell).
    pub verdict: &'static str,
    pub exit_code: u8,
    /// Why the verdict, in words.
    pub reason: String,
    /// Peers that must pass (default: all).
    pub quorum: usize,
    /// Peers that must raise a finding for it to count (default 1).
    pub finding_quorum: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fail_on: Option<FailOn>,
    pub peers: Vec<PeerReview>,
    /// Grouped across peers, the most severe first.
    pub findings: Vec<Reported>,
    /// The peers' verdicts differ.
    pub verdicts_disagree: bool,
    /// Where the report was saved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved: Option<std::path::PathBuf>,
}

impl Report {
    /// Decides the verdict: the review passes when at least `quorum` peers (default: all) pass
    /// and no finding raised by at least `finding_quorum` peers (default 1) reaches `fail_on`.
    /// It fails when that can no longer happen; it is undecided when peers that did not answer
    /// could still have made it pass (the exit code is then the first such call's).
    pub fn decide(
        peers: Vec<PeerReview>,
        quorum: Option<usize>,
        fail_on: Option<FailOn>,
    ) -> Report {
        let n = peers.len();
        let k_pass = quorum.unwrap_or(n).clamp(1, n.max(1));
        let k_find = quorum.unwrap_or(1).clamp(1, n.max(1));
        let findings = crate::review::group(&peers);
        let passes = peers.iter().filter(|p| p.verdict == Some("pass")).count();
        let fails = peers.iter().filter(|p| p.verdict == Some("fail")).count();
        let unanswered: Vec<&PeerReview> = peers.iter().filter(|p| p.verdict.is_none()).collect();
        let hit = fail_on.and_then(|lvl| {
            findings
                .iter()
                .find(|g| g.peers.len() >= k_find && g.level >= lvl.level())
        });
        let (verdict, exit_code, reason) = if let Some(g) = hit {
            (
                "fail",
                exit::REJECTED,
                format!(
                    "a {} finding reached --fail-on: {}",
                    g.level.as_str(),
                    g.finding.title.0
                ),
            )
        } else if passes >= k_pass {
            (
                "pass",
                exit::OK,
                format!("{passes} of {n} passed (quorum {k_pass})"),
            )
        } else if passes + unanswered.len() < k_pass {
            let why = match peers.as_slice() {
                [one] => format!("{}'s verdict is `patch is incorrect`", one.peer),
                _ => format!("{passes} of {n} passed, {fails} failed; the quorum is {k_pass}"),
            };
            ("fail", exit::REJECTED, why)
        } else {
            let first = unanswered[0];
            (
                "undecided",
                first.call_exit,
                format!(
                    "{passes} of {n} passed; {} gave no review ({}: {})",
                    unanswered.len(),
                    first.peer,
                    first.outcome.as_str()
                ),
            )
        };
        let verdicts_disagree = passes > 0 && fails > 0;
        Report {
            verdict,
            exit_code,
            reason,
            quorum: k_pass,
            finding_quorum: k_find,
            fail_on,
            peers,
            findings,
            verdicts_disagree,
            saved: None,
        }
    }

    /// Counts by level, e.g. `2 (1 error, 1 note)`.
    fn counts(&self) -> String {
        let mut by: BTreeMap<Level, usize> = BTreeMap::new();
        for f in &self.findings {
            *by.entry(f.level).or_default() += 1;
        }
        let parts: Vec<String> = by
            .iter()
            .rev()
            .map(|(l, n)| format!("{n} {}", l.as_str()))
            .collect();
        if parts.is_empty() {
            "0".into()
        } else {
            format!("{} ({})", self.findings.len(), parts.join(", "))
        }
    }

    /// Prints the report in `format` to stdout.
    pub fn print(&self, format: Format, name: &str) -> anyhow::Result<()> {
        match format {
            Format::Json => crate::output::json(self),
            Format::Text => self.print_text(name),
            Format::Sarif => crate::output::json(&self.sarif()),
            Format::Rdjsonl => {
                let mut out = std::io::stdout().lock();
                for line in self.rdjsonl() {
                    writeln!(out, "{line}")?;
                }
                out.flush()?;
                Ok(())
            }
            Format::Github => {
                let mut out = std::io::stdout().lock();
                for line in self.github() {
                    writeln!(out, "{line}")?;
                }
                out.flush()?;
                Ok(())
            }
        }
    }

    fn print_text(&self, name: &str) -> anyhow::Result<()> {
        let clean = crate::output::clean_line;
        let mut out = std::io::stdout().lock();
        if let [p] = self.peers.as_slice() {
            writeln!(
                out,
                "relay review: id={} outcome={} verdict={} findings={} peer={} time={}s reply={}",
                p.exchange,
                p.outcome.as_str(),
                self.verdict,
                self.counts(),
                p.peer,
                p.elapsed_ms / 1000,
                p.reply.display()
            )?;
        } else {
            writeln!(
                out,
                "relay review: name={name} verdict={} peers={} findings={} quorum={}",
                self.verdict,
                self.peers.len(),
                self.counts(),
                self.quorum
            )?;
            for p in &self.peers {
                writeln!(
                    out,
                    "  {:<8} {:<14} verdict={:<4} findings={:<3} time={}s id={}",
                    p.peer,
                    p.outcome.as_str(),
                    p.verdict.unwrap_or("-"),
                    p.findings.len(),
                    p.elapsed_ms / 1000,
                    p.exchange
                )?;
            }
        }
        for f in &self.findings {
            let r = &f.finding.code_location.line_range;
            let lines = if r.start == r.end {
                r.start.to_string()
            } else {
                format!("{}-{}", r.start, r.end)
            };
            let by = if self.peers.len() > 1 {
                format!(
                    " [{} of {}: {}]",
                    f.peers.len(),
                    self.peers.len(),
                    f.peers.join(", ")
                )
            } else {
                String::new()
            };
            writeln!(
                out,
                "\n{:<7} {}:{lines}  {}{by}",
                f.level.as_str(),
                f.finding.code_location.file_path.0,
                clean(&f.finding.title.0)
            )?;
            for l in f.finding.body.lines() {
                writeln!(out, "        {}", clean(l))?;
            }
            if let Some(fix) = &f.finding.recommendation {
                writeln!(out, "        fix: {}", clean(fix))?;
            }
            if let Some(note) = &f.place_note {
                writeln!(out, "        flagged: {}", clean(note))?;
            }
        }
        for p in &self.peers {
            let who = if self.peers.len() > 1 {
                format!("{}: ", p.peer)
            } else {
                String::new()
            };
            if let Some(e) = &p.explanation {
                let v = if p.verdict == Some("pass") {
                    "patch is correct"
                } else {
                    "patch is incorrect"
                };
                writeln!(out, "\n{who}{v}: {}", clean(e))?;
            }
            for n in &p.notes {
                writeln!(out, "{who}note: {}", clean(n))?;
            }
        }
        if self.verdicts_disagree {
            let list: Vec<String> = self
                .peers
                .iter()
                .filter_map(|p| p.verdict.map(|v| format!("{} {v}", p.peer)))
                .collect();
            writeln!(out, "\nverdicts disagree: {}", list.join(", "))?;
        }
        out.flush()?;
        drop(out);
        let mut err = std::io::stderr().lock();
        for p in &self.peers {
            if p.verdict.is_none() {
                writeln!(
                    err,
                    "relay: {} gave no review: {}",
                    p.peer,
                    clean(p.reason.as_deref().unwrap_or(p.outcome.as_str()))
                )?;
                for d in &p.record.diagnostics {
                    writeln!(err, "relay: {}", clean(d))?;
                }
            }
        }
        if self.exit_code != exit::OK {
            writeln!(err, "relay: review {}: {}", self.verdict, self.reason)?;
        }
        Ok(())
    }

    /// SARIF 2.1.0: one run, one result per finding (grouped), rules by priority, stable
    /// fingerprints, regions only where the finding's lines exist.
    pub fn sarif(&self) -> sarif::Sarif {
        const RULES: [(&str, &str); 4] = [
            ("must-fix", "A problem that blocks the change (priority 0)."),
            (
                "fix-before-merge",
                "A problem to fix before merging (priority 1).",
            ),
            ("worth-fixing", "A problem worth fixing (priority 2)."),
            ("nit", "A minor point (priority 3)."),
        ];
        let rules: Vec<sarif::ReportingDescriptor> = RULES
            .iter()
            .enumerate()
            .map(|(p, (name, text))| {
                let level = match p {
                    0 | 1 => "error",
                    2 => "warning",
                    _ => "note",
                };
                sarif::ReportingDescriptor::builder()
                    .id(format!("relay/review/p{p}"))
                    .name(*name)
                    .short_description(
                        sarif::MultiformatMessageString::builder()
                            .text(*text)
                            .build(),
                    )
                    .full_description(
                        sarif::MultiformatMessageString::builder()
                            .text(format!(
                                "{text} Raised by a peer agent's review through relay."
                            ))
                            .build(),
                    )
                    .default_configuration(
                        sarif::ReportingConfiguration::builder()
                            .level(json!(level))
                            .build(),
                    )
                    .help_uri(format!(
                        "{REPO}/blob/main/spec/PROTOCOL.md#12-reviews-deliberations-and-fan-out"
                    ))
                    .build()
            })
            .collect();
        let results: Vec<sarif::Result> = self
            .findings
            .iter()
            .map(|f| {
                let mut text = format!("{}: {}", f.finding.title.0, f.finding.body.trim());
                if let Some(fix) = &f.finding.recommendation {
                    text.push_str(&format!(" Fix: {}", fix.trim()));
                }
                let mut props = BTreeMap::new();
                props.insert("confidence".to_owned(), json!(f.finding.confidence_score.0));
                props.insert("peers".to_owned(), json!(f.peers));
                if let Some(n) = &f.place_note {
                    props.insert("flagged".to_owned(), json!(n));
                }
                let mut result = sarif::Result::builder()
                    .rule_id(f.rule_id.clone())
                    .rule_index(i64::from(f.finding.priority.0))
                    .level(match f.level {
                        Level::Error => sarif::ResultLevel::Error,
                        Level::Warning => sarif::ResultLevel::Warning,
                        Level::Note => sarif::ResultLevel::Note,
                    })
                    .message(sarif::Message::builder().text(text).build())
                    .partial_fingerprints(BTreeMap::from([(
                        "relayFinding/v1".to_owned(),
                        f.fingerprint.clone(),
                    )]))
                    .properties(
                        sarif::PropertyBag::builder()
                            .additional_properties(props)
                            .build(),
                    )
                    .build();
                if f.place != Place::MissingFile {
                    let artifact = sarif::ArtifactLocation::builder()
                        .uri(f.finding.code_location.file_path.0.clone())
                        .build();
                    let range = f.finding.code_location.line_range;
                    let physical = if f.place == Place::Ok {
                        sarif::PhysicalLocation::builder()
                            .artifact_location(artifact)
                            .region(
                                sarif::Region::builder()
                                    .start_line(i64::from(range.start))
                                    .end_line(i64::from(range.end))
                                    .build(),
                            )
                            .build()
                    } else {
                        sarif::PhysicalLocation::builder()
                            .artifact_location(artifact)
                            .build()
                    };
                    result.locations = Some(vec![
                        sarif::Location::builder()
                            .physical_location(physical)
                            .build(),
                    ]);
                }
                result
            })
            .collect();
        let driver = sarif::ToolComponent::builder()
            .name("relay")
            .full_name(format!("relay {} (peer review)", env!("CARGO_PKG_VERSION")))
            .version(env!("CARGO_PKG_VERSION"))
            .semantic_version(env!("CARGO_PKG_VERSION"))
            .information_uri(REPO)
            .rules(rules)
            .build();
        let mut run_props = BTreeMap::new();
        run_props.insert("verdict".to_owned(), json!(self.verdict));
        run_props.insert(
            "peers".to_owned(),
            json!(self.peers.iter().map(|p| &p.peer).collect::<Vec<_>>()),
        );
        let run = sarif::Run::builder()
            .tool(sarif::Tool::builder().driver(driver).build())
            .results(results)
            .column_kind(json!("unicodeCodePoints"))
            .properties(
                sarif::PropertyBag::builder()
                    .additional_properties(run_props)
                    .build(),
            )
            .build();
        sarif::Sarif::builder()
            .schema(sarif::SCHEMA_URL)
            .version(json!("2.1.0"))
            .runs(vec![run])
            .build()
    }

    /// reviewdog's rdjsonl: one diagnostic per line.
    pub fn rdjsonl(&self) -> Vec<String> {
        self.findings
            .iter()
            .map(|f| {
                let r = f.finding.code_location.line_range;
                let mut message = format!("{}\n\n{}", f.finding.title.0, f.finding.body.trim());
                if let Some(fix) = &f.finding.recommendation {
                    message.push_str(&format!("\n\nFix: {}", fix.trim()));
                }
                let d = json!({
                    "message": message,
                    "location": {
                        "path": f.finding.code_location.file_path.0,
                        "range": {"start": {"line": r.start}, "end": {"line": r.end}},
                    },
                    "severity": match f.level {
                        Level::Error => "ERROR",
                        Level::Warning => "WARNING",
                        Level::Note => "INFO",
                    },
                    "source": {"name": format!("relay ({})", f.peers.join(", "))},
                    "code": {"value": f.rule_id},
                });
                d.to_string()
            })
            .collect()
    }

    /// GitHub workflow commands: at most 10 per kind (GitHub shows no more per step), the most
    /// severe first; a notice says how many were left out and where the full list is.
    pub fn github(&self) -> Vec<String> {
        const PER_KIND: usize = 10;
        let mut out = Vec::new();
        let mut left_out = 0;
        for level in [Level::Error, Level::Warning, Level::Note] {
            let of_level = self.findings.iter().filter(|f| f.level == level);
            for (i, f) in of_level.enumerate() {
                // Leave room for the closing notice among the notices.
                let room = if level == Level::Note {
                    PER_KIND - 1
                } else {
                    PER_KIND
                };
                if i >= room {
                    left_out += 1;
                    continue;
                }
                let kind = match level {
                    Level::Error => "error",
                    Level::Warning => "warning",
                    Level::Note => "notice",
                };
                let r = f.finding.code_location.line_range;
                let mut props = Vec::new();
                if f.place != Place::MissingFile {
                    props.push(format!(
                        "file={}",
                        gh_prop(&f.finding.code_location.file_path.0)
                    ));
                    if f.place == Place::Ok {
                        props.push(format!("line={}", r.start));
                        props.push(format!("endLine={}", r.end));
                    }
                }
                props.push(format!("title={}", gh_prop(&f.finding.title.0)));
                let mut msg = f.finding.body.trim().to_owned();
                if let Some(fix) = &f.finding.recommendation {
                    msg.push_str(&format!("\nFix: {}", fix.trim()));
                }
                if self.peers.len() > 1 {
                    msg.push_str(&format!("\nFound by {}", f.peers.join(", ")));
                }
                out.push(format!("::{kind} {}::{}", props.join(","), gh_data(&msg)));
            }
        }
        if left_out > 0 {
            out.push(format!(
                "::notice title=relay review::{}",
                gh_data(&format!(
                    "{left_out} more finding(s) not shown as annotations (GitHub shows 10 per kind); the full list is in the step summary and in relay's JSON output"
                ))
            ));
        }
        out
    }

    /// Markdown for `$GITHUB_STEP_SUMMARY`: the verdict and every finding.
    pub fn markdown(&self) -> String {
        let mut md = format!(
            "### relay review: {}\n\n{}\n\n",
            self.verdict,
            md_cell(&self.reason)
        );
        md.push_str("| peer | outcome | verdict | findings |\n|---|---|---|---|\n");
        for p in &self.peers {
            md.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                p.peer,
                p.outcome.as_str(),
                p.verdict.unwrap_or("-"),
                p.findings.len()
            ));
        }
        if !self.findings.is_empty() {
            md.push_str("\n| level | where | finding | peers |\n|---|---|---|---|\n");
            for f in &self.findings {
                let r = f.finding.code_location.line_range;
                md.push_str(&format!(
                    "| {} | `{}:{}-{}` | {} | {} |\n",
                    f.level.as_str(),
                    md_cell(&f.finding.code_location.file_path.0),
                    r.start,
                    r.end,
                    md_cell(&f.finding.title.0),
                    f.peers.join(", ")
                ));
            }
        }
        md
    }
}

const REPO: &str = env!("CARGO_PKG_REPOSITORY");

/// A workflow-command message: `%`, CR and LF escaped.
fn gh_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// A workflow-command property: as data, plus `:` and `,`.
fn gh_prop(s: &str) -> String {
    gh_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// Text safe in a Markdown table cell.
fn md_cell(s: &str) -> String {
    crate::output::clean_line(s)
        .replace('|', "\\|")
        .replace('\n', " ")
}
