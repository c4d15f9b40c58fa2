//! The vocabulary of an exchange, shared by the pipeline's steps: what a caller asks
//! ([`ChatInput`], [`Assignment`]), how the answer reaches it ([`Delivery`],
//! [`ChatEvent`]), how it can fail ([`ExchangeError`]), and what admission gathered for the
//! agents ([`Prepared`]).

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::{
    agents::Agent,
    chat::ChatRequest,
    error::Error,
    llm::{LlmError, ProjectMap, Snippet, Subject, Task, Turn, Uses},
    projects::Project,
    specialists::routing::Specialist,
};

pub struct ChatInput {
    pub message: String,
    pub session_id: Option<String>,
    pub agent_id: Option<i64>,
    pub project_id: Option<i64>,
    pub code_context: Option<String>,
    /// Set when the server asks on its own account rather than passing on a user's message.
    pub assignment: Option<Assignment>,
}

/// What the server asks of one specialist on its own account (GitHub's review of a pull
/// request): the user's agent of that role, else the built-in one, answers `prompt`,
/// which the caller composed, with no history. Not a user's message, so it is outside the
/// user's AI rate limit and a request's size limits (the caller bounded its input), and
/// its answer is read whole, bounded as a whole by the provider timeout.
pub struct Assignment {
    pub specialist: Specialist,
    /// The user turn as the model sees it.
    pub prompt: String,
    /// What the prompt cites of the project's code, for the local engine, which reads no
    /// prompt.
    pub uses: Vec<Uses>,
}

impl From<ChatRequest> for ChatInput {
    fn from(r: ChatRequest) -> Self {
        ChatInput {
            message: r.message,
            session_id: r.session_id,
            agent_id: r.agent_id,
            project_id: r.project_id,
            code_context: r.code_context,
            assignment: None,
        }
    }
}

/// Progress of a chat, for streaming clients.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ChatEvent {
    Status {
        content: &'static str,
        agent: String,
    },
    Delta {
        content: String,
        seq: u64,
        agent: String,
    },
}

/// How an exchange reaches whoever asked. The default: nobody streams, nothing cancels.
#[derive(Default)]
pub struct Delivery {
    /// Statuses and pieces of the answer as they come (a full channel slows the generation
    /// to its reader's pace); `None` when nobody streams.
    pub events: Option<mpsc::Sender<ChatEvent>>,
    /// Fired when the asker goes away: the partial answer is stored, marked incomplete.
    pub cancel: CancellationToken,
    /// The socket that asked: it gets the answer itself, so the broadcast skips it.
    pub socket: Option<u64>,
}

/// Why an admitted exchange stored no chat. A provider's failure stays itself, so a job
/// can tell a refusal (not worth retrying) from an outage; whoever answers a client turns
/// it into an [`Error`].
#[derive(Debug)]
pub enum ExchangeError {
    Provider(LlmError),
    Other(Error),
}

impl From<Error> for ExchangeError {
    fn from(err: Error) -> Self {
        ExchangeError::Other(err)
    }
}

impl From<ExchangeError> for Error {
    fn from(err: ExchangeError) -> Self {
        match err {
            ExchangeError::Provider(err) => err.into(),
            ExchangeError::Other(err) => err,
        }
    }
}

/// An admitted exchange's request, with everything its agents need.
pub(super) struct Prepared {
    pub(super) user_id: i64,
    pub(super) session_id: String,
    pub(super) message: String,
    pub(super) code_context: Option<String>,
    pub(super) agent: Option<Agent>,
    pub(super) project: Option<Project>,
    pub(super) history: Vec<Turn>,
    pub(super) snippets: Vec<Snippet>,
    /// The project's files related to the message (`None`: no project, or not indexed).
    pub(super) map: Option<ProjectMap>,
    pub(super) assignment: Option<Assignment>,
}

impl Prepared {
    /// Codebase Sherpa and Doc Sync answer from the project's code (routing may look at
    /// whether there is any); the others do not need it.
    pub(super) fn snippets_for(&self, task: Task) -> &[Snippet] {
        match task {
            Task::Route | Task::Explain | Task::Docs => &self.snippets,
            Task::Review | Task::Chat => &[],
        }
    }

    /// The map of the project goes with the snippets to Codebase Sherpa and Doc Sync.
    pub(super) fn map_for(&self, task: Task) -> Option<&ProjectMap> {
        match task {
            Task::Explain | Task::Docs => self.map.as_ref().filter(|map| !map.is_empty()),
            Task::Route | Task::Review | Task::Chat => None,
        }
    }

    /// The user's own words, as the local engine reads them.
    pub(super) fn subject(&self, task: Task) -> Subject {
        Subject {
            message: self.message.clone(),
            code_context: self.code_context.clone(),
            project_snippets: self.snippets_for(task).to_vec(),
            uses: self
                .assignment
                .as_ref()
                .map(|assignment| assignment.uses.clone())
                .unwrap_or_default(),
            project_map: self.map_for(task).cloned(),
        }
    }
}
