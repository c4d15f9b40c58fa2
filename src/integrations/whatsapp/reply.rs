//! The reply to one incoming message, worked out once and sent once: mark it read (with
//! the typing indicator), decide the answer (link, notice, or a chat with the user's
//! agents, about a shared file of code too) in the same transaction that records it, then
//! send each part not yet sent, in order and paced as Meta asks.

use std::sync::OnceLock;

use regex::Regex;

use super::{
    client::{GraphError, Recipient},
    files::{self, File, SUPPORTED},
    format::{split, to_whatsapp, PART_MAX},
    link::{owner_of, CODE_DIGITS},
    pace::Pacer,
    payload::Media,
    store::{self, Stored},
};
use crate::{
    agents,
    error::Error,
    jobs::Stop,
    orchestrator::{self, ChatInput, Delivery, CODE_CONTEXT_MAX},
    state::AppState,
    users::User,
};

const LINKED: &str = "✅ This number is now linked to your CodeSherpa account. Send a message \
    to chat with your agents; start it with @Agent Name (e.g. @Review Monk) to ask one of them.";
const REFUSED: &str = "That link code is not valid or has expired. Create a new one in \
    CodeSherpa and send \"link <code>\" within 10 minutes.";
const NOT_LINKED: &str = "This number is not linked to a CodeSherpa account. In CodeSherpa, \
    create a WhatsApp link code and send \"link <code>\" here.";
const NO_NUMBER: &str = "CodeSherpa links accounts by phone number, and WhatsApp did not share \
    yours with us, so this chat cannot be linked.";
const NO_ANSWER: &str = "Sorry, the AI could not answer that right now. Please try again later.";
const EMPTY_ANSWER: &str = "(The agent gave an empty answer.)";
/// The message sent with a shared file that has no caption.
const REVIEW_THIS_FILE: &str = "Review this file";

/// One run of the reply job. Safe to repeat: every step remembers that it was done.
pub async fn process(state: &AppState, message: &Stored, pacer: &mut Pacer) -> Result<(), Stop> {
    if !message.read_marked {
        mark_read(state, message, pacer).await?;
    }
    if !message.answered {
        decide(state, message, pacer).await?;
    }
    let recipient = match (&message.sender_number, &message.sender_user_id) {
        (Some(number), _) => Recipient::Number(number.clone()),
        (None, Some(user_id)) => Recipient::UserId(user_id.clone()),
        (None, None) => return Ok(()),
    };
    let graph = &state.whatsapp.graph;
    for (seq, body) in store::unsent_parts(&state.db, message.id).await? {
        let sent = loop {
            pacer.before_send().await;
            match graph
                .send_text(&message.phone_number_id, &recipient, &body)
                .await
            {
                Ok(sent) => break sent,
                Err(err) => {
                    if err.is_pair_rate() {
                        store::paced(&state.db, message.id).await?;
                    }
                    pacer.after_error(err).await?;
                }
            }
        };
        pacer.sent();
        store::part_sent(&state.db, message.id, seq, &sent).await?;
    }
    Ok(())
}

/// The blue ticks and the typing indicator, once; a refusal does not hold the reply up.
async fn mark_read(state: &AppState, message: &Stored, pacer: &mut Pacer) -> Result<(), Stop> {
    let graph = &state.whatsapp.graph;
    loop {
        match graph
            .mark_read(&message.phone_number_id, &message.wamid)
            .await
        {
            Ok(()) => break,
            Err(GraphError::Permanent { reason, .. }) => {
                tracing::warn!(%reason, "WhatsApp read receipt refused; replying anyway");
                break;
            }
            Err(err) => pacer.after_error(err).await?,
        }
    }
    store::mark_read(&state.db, message.id).await?;
    Ok(())
}

/// Works out the reply and stores it (with whatever it changed) in one go.
async fn decide(state: &AppState, message: &Stored, pacer: &mut Pacer) -> Result<(), Stop> {
    let db = &state.db;
    let Some(number) = message.sender_number.as_deref() else {
        let sender = message.sender_user_id.as_deref().unwrap_or_default();
        store::notice(db, message.id, sender, "link", NO_NUMBER).await?;
        return Ok(());
    };
    let text = message
        .body
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    // Only a text links: a document's caption is a question about the file.
    let code = text.filter(|_| message.kind == "text").and_then(link_code);
    if let Some(code) = code {
        return try_link(state, message, number, code).await;
    }
    let Some(user) = owner_of(db, number).await? else {
        let notice = match (text, message.kind.as_str()) {
            (Some(_), _) | (None, "document") => NOT_LINKED.to_owned(),
            (None, _) => format!("{SUPPORTED} {NOT_LINKED}"),
        };
        store::notice(db, message.id, number, "link", &notice).await?;
        return Ok(());
    };
    if let Some(media) = shared_file(message) {
        return answer_file(state, message, &user, number, &media, pacer).await;
    }
    match text {
        None => store::reply(db, message.id, None, &[SUPPORTED.to_owned()]).await?,
        Some(text) => answer(state, message, &user, number, text, None).await?,
    }
    Ok(())
}

/// The document the message shared, if it is one.
fn shared_file(message: &Stored) -> Option<Media> {
    (message.kind == "document").then_some(())?;
    Some(Media {
        id: message.media_id.clone()?,
        mime_type: message.mime_type.clone(),
        filename: message.filename.clone(),
    })
}

/// A shared file of code: its text is the chat's `code_context` and its caption the
/// message; a file that is not text, or too large, gets a reply saying why.
async fn answer_file(
    state: &AppState,
    message: &Stored,
    user: &User,
    number: &str,
    media: &Media,
    pacer: &mut Pacer,
) -> Result<(), Stop> {
    let text = match files::read(state, &message.phone_number_id, media, pacer).await? {
        File::Text(text) => text,
        File::Refused(why) => {
            store::reply(&state.db, message.id, None, &[why]).await?;
            return Ok(());
        }
    };
    let caption = message
        .body
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .unwrap_or(REVIEW_THIS_FILE);
    answer(state, message, user, number, caption, Some(text)).await
}

/// Links `number` with `code` when both budgets allow a check and the code is live.
/// Only a code of the right length is ever compared (any other cannot match, so it
/// spends no budget); the number's budget is asked first, so a number over it cannot
/// spend the budget shared by all numbers.
async fn try_link(
    state: &AppState,
    message: &Stored,
    number: &str,
    code: &str,
) -> Result<(), Stop> {
    let db = &state.db;
    if code.len() != CODE_DIGITS {
        store::reply(db, message.id, None, &[REFUSED.to_owned()]).await?;
        return Ok(());
    }
    if let Err(wait) = state.limits.check_link_code(number).await {
        let refusal = format!("Too many link attempts from this number. Try again in {wait} s.");
        store::reply(db, message.id, None, &[refusal]).await?;
        return Ok(());
    }
    let budget = state.config.whatsapp.link_attempts_per_minute;
    let check = match state.limits.reserve_link_check(budget).await {
        Ok(check) => check,
        Err(wait) => {
            tracing::warn!("WhatsApp link attempts over the budget of all numbers");
            let refusal = format!("Too many link attempts right now. Try again in {wait} s.");
            store::reply(db, message.id, None, &[refusal]).await?;
            return Ok(());
        }
    };
    // An error leaves the check spent: whether the code was compared is unknown.
    let linked = store::link(db, message.id, code, number, LINKED, REFUSED).await?;
    if let Some((user_id, earlier)) = linked {
        state.limits.return_link_check(check).await;
        state.user_cache.forget(user_id);
        if let Some(earlier) = earlier {
            state.user_cache.forget(earlier);
        }
        tracing::info!(user_id, "WhatsApp number linked");
    }
    Ok(())
}

/// `link 12345678` (any case, any spacing) → the code. Any run of digits is taken, so a
/// mistyped code is told it is not valid rather than sent to the agents.
fn link_code(text: &str) -> Option<&str> {
    static PATTERN: OnceLock<Regex> = OnceLock::new();
    PATTERN
        .get_or_init(|| Regex::new(r"(?i)^link\s+(\d{1,12})$").expect("valid pattern"))
        .captures(text)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// Has the user's agents answer the text (the chat is stored and their sockets told), and
/// records the answer as WhatsApp parts.
async fn answer(
    state: &AppState,
    message: &Stored,
    user: &User,
    number: &str,
    text: &str,
    code: Option<String>,
) -> Result<(), Stop> {
    let (agent_id, text) = addressed_agent(state, user.id, text).await?;
    let (code_context, cut) = match code {
        Some(code) => {
            let (code, cut) = within_limit(code);
            (Some(code), cut)
        }
        None => (None, false),
    };
    let input = ChatInput {
        message: text,
        session_id: Some(format!("whatsapp:{number}")),
        agent_id,
        project_id: None,
        code_context,
        assignment: None,
    };
    let outcome = match orchestrator::admit(state, user.id, input).await {
        Ok(exchange) => exchange.run(Delivery::default()).await.map_err(Error::from),
        Err(err) => Err(err),
    };
    let chat = match outcome {
        Ok(chat) => chat,
        Err(err) => {
            let reply = refusal(err)?;
            store::reply(&state.db, message.id, None, &[reply]).await?;
            return Ok(());
        }
    };
    let mut reply = to_whatsapp(&chat.response);
    if cut {
        reply.push_str(&format!(
            "\n\n_(Only the first {CODE_CONTEXT_MAX} characters of the file were read.)_"
        ));
    }
    let mut parts = split(&reply, PART_MAX);
    if parts.iter().all(|p| p.trim().is_empty()) {
        parts = vec![EMPTY_ANSWER.to_owned()];
    }
    store::reply(&state.db, message.id, Some(chat.id), &parts).await?;
    Ok(())
}

/// A file's text cut to what a chat takes as `code_context` (on a character boundary);
/// true when something was cut.
fn within_limit(code: String) -> (String, bool) {
    match code.char_indices().nth(CODE_CONTEXT_MAX) {
        Some((end, _)) => (code[..end].to_owned(), true),
        None => (code, false),
    }
}

/// What the phone is told when a chat could not run; an outage is retried instead.
fn refusal(err: Error) -> Result<String, Stop> {
    match err {
        Error::RateLimited { retry_after_secs } => Ok(format!(
            "You have reached your AI message limit. Try again in {retry_after_secs} s."
        )),
        Error::Validation(_) | Error::NotFound(_) => Ok(err.client_message()),
        err if err.status().is_server_error() && !matches!(err, Error::BadGateway(_)) => {
            Err(err.into())
        }
        err => {
            tracing::warn!(error = %err, "WhatsApp chat failed");
            Ok(NO_ANSWER.to_owned())
        }
    }
}

/// A leading `@Agent Name` picks one of the user's agents (the longest name that
/// matches, any case); the rest of the text is the message.
async fn addressed_agent(
    state: &AppState,
    user_id: i64,
    text: &str,
) -> Result<(Option<i64>, String), Error> {
    let Some(rest) = text.strip_prefix('@') else {
        return Ok((None, text.to_owned()));
    };
    let chosen = agents::store::names(&state.db, user_id)
        .await?
        .into_iter()
        .filter(|(_, name)| !name.is_empty() && names_agent(rest, name))
        .max_by_key(|(_, name)| name.len());
    Ok(match chosen {
        Some((id, name)) => {
            let message = rest[name.len()..]
                .trim_start_matches([':', ',', '-'])
                .trim();
            let message = if message.is_empty() { text } else { message };
            (Some(id), message.to_owned())
        }
        None => (None, text.to_owned()),
    })
}

/// `rest` starts with `name` (any case) followed by the end or a separator.
fn names_agent(rest: &str, name: &str) -> bool {
    rest.get(..name.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(name))
        && rest[name.len()..]
            .chars()
            .next()
            .is_none_or(|c| c.is_whitespace() || matches!(c, ':' | ',' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_codes_are_recognised_only_alone() {
        assert_eq!(link_code("link 12345678"), Some("12345678"));
        assert_eq!(link_code("LINK   04204204"), Some("04204204"));
        assert_eq!(link_code("link 123"), Some("123"));
        assert_eq!(link_code("link my repo"), None);
        assert_eq!(link_code("please link 12345678"), None);
    }

    #[test]
    fn a_file_longer_than_a_chat_takes_is_cut_on_a_character_boundary() {
        let (short, cut) = within_limit("fn main() {}".into());
        assert_eq!((short.as_str(), cut), ("fn main() {}", false));
        let long = "é".repeat(CODE_CONTEXT_MAX + 5);
        let (kept, cut) = within_limit(long);
        assert!(cut);
        assert_eq!(kept.chars().count(), CODE_CONTEXT_MAX);
    }

    #[test]
    fn agent_names_match_whole_words_in_any_case() {
        assert!(names_agent("review monk: look at this", "Review Monk"));
        assert!(names_agent("Doc Sync", "Doc Sync"));
        assert!(!names_agent("Doc Syncer hi", "Doc Sync"));
        assert!(!names_agent("Rév", "Review Monk"));
    }
}
