//! Chat queries; every one is scoped to its owner.

use sqlx::types::Json;

use super::{Chat, ChatSession};
use crate::{
    db::{
        now,
        page::{self, Order, PageQuery, Value},
        Db,
    },
    error::Result,
    llm::{estimate_tokens, Role, Turn},
    pagination::PageRequest,
    with_pool,
};

const COLUMNS: &str = "id, user_id, session_id, agent_id, project_id, message, response, result, \
    agent, provider, model, prompt_tokens, completion_tokens, latency_ms, complete, created_at";

pub struct NewChat {
    pub user_id: i64,
    pub session_id: String,
    pub agent_id: Option<i64>,
    pub project_id: Option<i64>,
    pub message: String,
    pub response: String,
    pub result: Option<serde_json::Value>,
    pub agent: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub latency_ms: i64,
    pub complete: bool,
}

pub async fn insert(db: &Db, chat: NewChat) -> Result<Chat> {
    let sql = format!(
        "INSERT INTO chats (user_id, session_id, agent_id, project_id, message, response, result, \
         agent, provider, model, prompt_tokens, completion_tokens, latency_ms, complete, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) RETURNING {COLUMNS}"
    );
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(chat.user_id)
        .bind(&chat.session_id)
        .bind(chat.agent_id)
        .bind(chat.project_id)
        .bind(&chat.message)
        .bind(&chat.response)
        .bind(chat.result.clone().map(Json))
        .bind(&chat.agent)
        .bind(&chat.provider)
        .bind(&chat.model)
        .bind(chat.prompt_tokens)
        .bind(chat.completion_tokens)
        .bind(chat.latency_ms)
        .bind(chat.complete)
        .bind(now())
        .fetch_one(pool)
        .await)?)
}

pub async fn get(db: &Db, user_id: i64, id: i64) -> Result<Option<Chat>> {
    let sql = format!("SELECT {COLUMNS} FROM chats WHERE id = $1 AND user_id = $2");
    Ok(with_pool!(db, |pool| sqlx::query_as(&sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(pool)
        .await)?)
}

#[derive(Default)]
pub struct Filter {
    pub session_id: Option<String>,
    pub agent_id: Option<i64>,
    pub project_id: Option<i64>,
}

/// A [`Chat`] as its `Serialize` derive writes it, for SQLite's list pages.
const JSON: page::Fields = &[
    ("id", Value::Column("id")),
    ("user_id", Value::Column("user_id")),
    ("session_id", Value::Column("session_id")),
    ("agent_id", Value::Column("agent_id")),
    ("project_id", Value::Column("project_id")),
    ("message", Value::Column("message")),
    ("response", Value::Column("response")),
    ("result", Value::Json("result")),
    ("agent", Value::Column("agent")),
    ("provider", Value::Column("provider")),
    ("model", Value::Column("model")),
    ("prompt_tokens", Value::Column("prompt_tokens")),
    ("completion_tokens", Value::Column("completion_tokens")),
    ("latency_ms", Value::Column("latency_ms")),
    ("complete", Value::Bool("complete")),
    ("created_at", Value::Time("created_at")),
];

/// Newest first, except within one session, which reads oldest first like a transcript.
pub async fn list(db: &Db, user_id: i64, filter: &Filter, page: PageRequest) -> Result<page::Page> {
    const FROM_WHERE: &str = "FROM chats WHERE user_id = $1 AND ($2 IS NULL OR session_id = $2) \
        AND ($3 IS NULL OR agent_id = $3) AND ($4 IS NULL OR project_id = $4)";
    let order = if filter.session_id.is_some() {
        Order::OldestFirst
    } else {
        Order::NewestFirst
    };
    let query = PageQuery {
        from_where: FROM_WHERE,
        columns: COLUMNS,
        fields: JSON,
        order,
        next: 5,
    };
    crate::fetch_page!(
        db,
        Chat,
        query,
        user_id,
        &filter.session_id,
        filter.agent_id,
        filter.project_id,
        page.limit,
        page.offset,
    )
}

/// The user's sessions, most recently active first.
pub async fn sessions(db: &Db, user_id: i64, page: PageRequest) -> Result<(Vec<ChatSession>, i64)> {
    let sql = "SELECT s.session_id AS id, f.message AS title, s.message_count, s.last_activity \
        FROM (SELECT session_id, MIN(id) AS first_id, MAX(id) AS last_id, COUNT(*) AS message_count, \
              MAX(created_at) AS last_activity \
              FROM chats WHERE user_id = $1 GROUP BY session_id) s \
        JOIN chats f ON f.id = s.first_id \
        ORDER BY s.last_id DESC LIMIT $2 OFFSET $3";
    let count = "SELECT COUNT(DISTINCT session_id) FROM chats WHERE user_id = $1";
    let (mut items, total): (Vec<ChatSession>, i64) = with_pool!(db, |pool| {
        let items = sqlx::query_as(sql)
            .bind(user_id)
            .bind(page.limit)
            .bind(page.offset)
            .fetch_all(pool)
            .await?;
        let (total,): (i64,) = sqlx::query_as(count).bind(user_id).fetch_one(pool).await?;
        Ok::<_, sqlx::Error>((items, total))
    })?;
    for session in &mut items {
        session.title = title_of(&session.title);
    }
    Ok((items, total))
}

fn title_of(message: &str) -> String {
    let line = message
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim();
    match line.char_indices().nth(60) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line.to_owned(),
    }
}

/// Appended to an answer that was cut short, so the model knows it is not whole.
const INTERRUPTED: &str = "[this answer was interrupted before it was finished]";

/// The session's earlier turns, oldest first, newest kept within `token_budget`.
/// An exchange whose answer is blank (cancelled before the first piece) is left out
/// whole: providers reject blank turns (Bedrock) and two user turns in a row.
pub async fn history(
    db: &Db,
    user_id: i64,
    session_id: &str,
    token_budget: usize,
) -> Result<Vec<Turn>> {
    let rows: Vec<(String, String, bool)> = with_pool!(db, |pool| sqlx::query_as(
        "SELECT message, response, complete FROM chats WHERE user_id = $1 AND session_id = $2 \
         ORDER BY id DESC LIMIT 100"
    )
    .bind(user_id)
    .bind(session_id)
    .fetch_all(pool)
    .await)?;
    Ok(turns_within(rows, token_budget))
}

/// Rows newest first → turns oldest first.
fn turns_within(rows: Vec<(String, String, bool)>, token_budget: usize) -> Vec<Turn> {
    let mut spent = 0;
    let mut turns = Vec::new();
    for (message, response, complete) in rows {
        if response.trim().is_empty() || message.trim().is_empty() {
            continue;
        }
        let response = if complete {
            response
        } else {
            format!("{}\n\n{INTERRUPTED}", response.trim_end())
        };
        spent += estimate_tokens(&message) + estimate_tokens(&response);
        if spent > token_budget {
            break;
        }
        turns.push(Turn {
            role: Role::Assistant,
            content: response,
        });
        turns.push(Turn {
            role: Role::User,
            content: message,
        });
    }
    turns.reverse();
    turns
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_the_first_line_shortened() {
        assert_eq!(title_of("\n  Review my code\nplease"), "Review my code");
        let long = "x".repeat(80);
        assert_eq!(title_of(&long).chars().count(), 61);
    }

    #[test]
    fn blank_answers_are_skipped_and_partial_ones_marked() {
        let rows = vec![
            ("third".to_owned(), "cut sho".to_owned(), false),
            ("second".to_owned(), "  ".to_owned(), false),
            ("first".to_owned(), "whole".to_owned(), true),
        ];
        let turns: Vec<(Role, String)> = turns_within(rows, 4000)
            .into_iter()
            .map(|t| (t.role, t.content))
            .collect();
        assert_eq!(
            turns,
            [
                (Role::User, "first".to_owned()),
                (Role::Assistant, "whole".to_owned()),
                (Role::User, "third".to_owned()),
                (Role::Assistant, format!("cut sho\n\n{INTERRUPTED}")),
            ]
        );
    }
}
