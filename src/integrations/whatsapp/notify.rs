//! Review notifications (SPEC §6.3): a linked user who opted in (`whatsapp_notify`) hears
//! when a pull-request review of one of their projects finishes — as text within 24 hours
//! of their last message, as the approved template (`WHATSAPP_NOTIFY_TEMPLATE`) outside
//! that window, where Meta refuses free text (`131047`); skipped and counted when no
//! template or no sending number is configured.
//!
//! GitHub's review job queues a `whatsapp.notify` job (one per review: its dedupe key) in
//! the transaction that records the review as done, so a crash never sends two.

use chrono::Duration;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use super::{
    client::{GraphError, Recipient, Template, OUTSIDE_WINDOW},
    notifications::{self, Kind, Notification},
    pace::Pacer,
    store,
};
use crate::{
    db::{now, Db},
    error::Result,
    jobs::{Handler, Job, NewJob, Outcome, Stop, Workers},
    specialists::schemas::{Review, Severity},
    state::AppState,
    users::store as users,
};

/// The job kind of a review notification.
pub const NOTIFY_JOB: &str = "whatsapp.notify";

/// Notifications worked on at once by one instance.
const CONCURRENCY: usize = 2;

/// What a finished review tells its owner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewFinished {
    pub review_id: i64,
    pub user_id: i64,
    /// `owner/repo`.
    pub repository: String,
    pub pull_number: i64,
    /// 1 to 10, when the review had a structured answer.
    pub quality_score: Option<u8>,
    /// Findings by severity: critical, high, medium, low.
    pub findings: [usize; 4],
    /// The review's comment on the pull request.
    pub comment_url: String,
}

impl ReviewFinished {
    pub fn new(
        review_id: i64,
        user_id: i64,
        repository: &str,
        pull_number: i64,
        review: Option<&Review>,
        comment_url: &str,
    ) -> Self {
        let mut findings = [0; 4];
        for finding in review.iter().flat_map(|r| &r.findings) {
            findings[finding.severity as usize] += 1;
        }
        ReviewFinished {
            review_id,
            user_id,
            repository: repository.to_owned(),
            pull_number,
            quality_score: review.map(|r| r.quality_score),
            findings,
            comment_url: comment_url.to_owned(),
        }
    }

    fn pull_request(&self) -> String {
        format!("{}#{}", self.repository, self.pull_number)
    }

    fn score(&self) -> String {
        self.quality_score
            .map_or_else(|| "not scored".to_owned(), |s| format!("{s}/10"))
    }

    /// `1 critical, 2 high` (most severe first), or `no findings`.
    fn summary(&self) -> String {
        const NAMES: [(Severity, &str); 4] = [
            (Severity::Critical, "critical"),
            (Severity::High, "high"),
            (Severity::Medium, "medium"),
            (Severity::Low, "low"),
        ];
        let counted: Vec<String> = NAMES
            .iter()
            .filter_map(|(severity, name)| {
                let n = self.findings[*severity as usize];
                (n > 0).then(|| format!("{n} {name}"))
            })
            .collect();
        if counted.is_empty() {
            "no findings".to_owned()
        } else {
            counted.join(", ")
        }
    }

    /// The text sent within the 24-hour window.
    fn text(&self) -> String {
        format!(
            "✅ CodeSherpa finished reviewing {}: quality {}, findings: {}.\n{}",
            self.pull_request(),
            self.score(),
            self.summary(),
            self.comment_url
        )
    }

    /// The template's body parameters, in order: repository#number, score, findings
    /// summary, URL (single lines: Meta refuses line breaks in parameters).
    fn parameters(&self) -> Vec<String> {
        [
            self.pull_request(),
            self.score(),
            self.summary(),
            self.comment_url.clone(),
        ]
        .into_iter()
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect()
    }
}

/// The job that tells the review's owner, when they opted in and have a linked number:
/// queue it in the transaction that records the review as done (`None`: nobody to tell).
pub async fn job_for(db: &Db, finished: &ReviewFinished) -> Result<Option<NewJob>> {
    if recipient(db, finished.user_id).await?.is_none() {
        return Ok(None);
    }
    let payload = serde_json::to_value(finished)
        .map_err(|err| crate::error::Error::internal(format!("notification payload: {err}")))?;
    Ok(Some(
        NewJob::new(NOTIFY_JOB, payload).dedupe_key(format!("review:{}", finished.review_id)),
    ))
}

/// The number to tell: an active user's, who opted in.
async fn recipient(db: &Db, user_id: i64) -> Result<Option<String>> {
    Ok(users::find_by_id(db, user_id)
        .await?
        .filter(|user| user.is_active && user.whatsapp_notify)
        .and_then(|user| user.whatsapp_number))
}

/// Registers the notification job's handler.
pub fn register(workers: &mut Workers, state: &AppState) {
    workers.register(
        NOTIFY_JOB,
        CONCURRENCY,
        NotifyJob {
            state: state.clone(),
        },
    );
}

struct NotifyJob {
    state: AppState,
}

impl Handler for NotifyJob {
    fn run(&self, job: Job) -> BoxFuture<'static, Outcome> {
        let state = self.state.clone();
        Box::pin(async move {
            let Ok(finished) = serde_json::from_value::<ReviewFinished>(job.payload.clone()) else {
                return Outcome::failed("the job names no finished review");
            };
            match notify(&state, &job, &finished).await {
                Ok(()) => Outcome::Done,
                Err(stop) => stop.into(),
            }
        })
    }

    fn failed(&self, job: Job, reason: String) -> BoxFuture<'static, ()> {
        let state = self.state.clone();
        Box::pin(async move {
            tracing::warn!(%reason, "WhatsApp review notification failed");
            let review_id = job.payload["review_id"].as_i64().unwrap_or_default();
            if let Err(err) = notifications::failed(&state.db, review_id, &reason).await {
                tracing::warn!(error = %err, "cannot record a failed WhatsApp notification");
            }
        })
    }
}

/// Decides once how the owner is told, then sends it unless it went out already.
async fn notify(state: &AppState, job: &Job, finished: &ReviewFinished) -> Result<(), Stop> {
    let db = &state.db;
    let stored = match notifications::find(db, finished.review_id).await? {
        Some(stored) => stored,
        None => {
            // Opted out (or unlinked) since the review was queued: nothing to do.
            let Some(number) = recipient(db, finished.user_id).await? else {
                return Ok(());
            };
            let (kind, reason) = decide(state, &number).await?;
            notifications::decide(
                db,
                finished.review_id,
                finished.user_id,
                kind,
                &number,
                reason,
            )
            .await?
        }
    };
    if stored.kind == Kind::Skipped || stored.sent_id.is_some() {
        return Ok(());
    }
    send(state, job, finished, stored).await
}

/// Text inside the 24-hour window, the template outside it, or skipped (with why).
async fn decide(state: &AppState, number: &str) -> Result<(Kind, Option<&'static str>), Stop> {
    let settings = &state.config.whatsapp;
    if settings.phone_number_id.is_none() || settings.access_token.is_none() {
        return Ok((
            Kind::Skipped,
            Some("WHATSAPP_PHONE_NUMBER_ID or WHATSAPP_ACCESS_TOKEN is not set"),
        ));
    }
    let last = store::last_message_from(&state.db, number).await?;
    if last.is_some_and(|at| at > now() - Duration::hours(24)) {
        return Ok((Kind::Text, None));
    }
    Ok(match settings.notify_template {
        Some(_) => (Kind::Template, None),
        None => (
            Kind::Skipped,
            Some("outside the 24-hour window and WHATSAPP_NOTIFY_TEMPLATE is not set"),
        ),
    })
}

async fn send(
    state: &AppState,
    job: &Job,
    finished: &ReviewFinished,
    mut stored: Notification,
) -> Result<(), Stop> {
    let settings = &state.config.whatsapp;
    let (Some(phone_number_id), Some(number)) = (&settings.phone_number_id, &stored.recipient)
    else {
        return Err(Stop::failed("WHATSAPP_PHONE_NUMBER_ID is not set"));
    };
    let to = Recipient::Number(number.clone());
    let graph = &state.whatsapp.graph;
    let mut pacer = Pacer::new(job, state.jobs.config(), None, None);
    loop {
        let result = match stored.kind {
            Kind::Text => {
                graph
                    .send_text(phone_number_id, &to, &finished.text())
                    .await
            }
            Kind::Template => {
                let Some(name) = &settings.notify_template else {
                    return Err(Stop::failed("WHATSAPP_NOTIFY_TEMPLATE is not set"));
                };
                let template = Template {
                    name,
                    language: &settings.notify_template_language,
                    parameters: finished.parameters(),
                };
                graph.send_template(phone_number_id, &to, &template).await
            }
            Kind::Skipped => return Ok(()),
        };
        match result {
            Ok(sent_id) => {
                notifications::sent(&state.db, stored.id, stored.kind, &sent_id).await?;
                return Ok(());
            }
            // The window closed after all (Meta's clock rules): the template instead.
            Err(GraphError::Permanent {
                code: Some(OUTSIDE_WINDOW),
                ..
            }) if stored.kind == Kind::Text => {
                let next = match settings.notify_template {
                    Some(_) => Kind::Template,
                    None => Kind::Skipped,
                };
                let reason = "Meta refused free text outside the 24-hour window (131047)";
                notifications::outside_window(&state.db, stored.id, next, reason).await?;
                stored.kind = next;
            }
            Err(err) => pacer.after_error(err).await?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::specialists::schemas::{Finding, SecurityRisk};

    fn finding(severity: Severity) -> Finding {
        Finding {
            severity,
            file: "src/lib.rs".into(),
            line: 1,
            issue: "i".into(),
            suggestion: "s".into(),
            code_fix: String::new(),
        }
    }

    #[test]
    fn the_message_names_the_pull_request_score_findings_and_comment() {
        let review = Review {
            summary: "ok".into(),
            findings: vec![
                finding(Severity::Low),
                finding(Severity::High),
                finding(Severity::Low),
            ],
            quality_score: 7,
            security_risk: SecurityRisk::Low,
        };
        let url = "https://github.com/acme/api/pull/12#issuecomment-9";
        let finished = ReviewFinished::new(3, 4, "acme/api", 12, Some(&review), url);
        assert_eq!(finished.findings, [0, 1, 0, 2]);
        assert_eq!(
            finished.parameters(),
            ["acme/api#12", "7/10", "1 high, 2 low", url]
        );
        assert!(finished
            .text()
            .contains("acme/api#12: quality 7/10, findings: 1 high, 2 low."));
        let unscored = ReviewFinished::new(3, 4, "acme/api", 12, None, url);
        assert_eq!(unscored.parameters()[1..3], ["not scored", "no findings"]);
    }
}
