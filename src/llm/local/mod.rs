//! The local engine: offline and deterministic. It has no language model; it routes by
//! keywords, reviews with static checks, and explains and documents code from its
//! structure. Every answer says it came from here.

pub mod explain;
pub mod language;
pub mod locate;
pub mod review;
pub mod source;

use futures_util::stream;

use super::{estimate_tokens, Chunk, ChunkStream, LlmRequest, Provider, Task, Usage};
use crate::specialists::routing::route_by_keywords;
use source::Source;

pub struct LocalEngine;

pub const MODEL: &str = "codesherpa-local-1";

const NO_CODE: &str =
    "I'm CodeSherpa's local engine (offline, rule-based). I didn't find any code \
in your message: paste a diff or a snippet (or set `code_context`, or ask about a synced project) \
and I'll review, explain or document it. Configure an AI provider (`LLM_PROVIDER`) for open-ended \
questions.";

/// The whole answer for `request`, as the local engine would say it.
pub fn answer(request: &LlmRequest) -> String {
    let subject = &request.subject;
    let source = Source::find(&subject.message, subject.code_context.as_deref());
    let snippet = subject.project_snippets.first();
    let code: Option<(String, Option<String>)> = match (&source, snippet) {
        (Some(source), _) => Some((source.all_text(), None)),
        (None, Some(snippet)) => Some((snippet.text.clone(), Some(snippet.citation()))),
        (None, None) => None,
    };
    match request.task {
        Task::Route => {
            let agents = route_by_keywords(&subject.message, code.is_some());
            serde_json::json!({"agents": agents, "reason": "keyword match (local engine)"})
                .to_string()
        }
        Task::Review => match &source {
            Some(source) => {
                let mut review = review::review(source);
                review::cite_uses(&mut review, &subject.uses);
                serde_json::to_string(&review).unwrap_or_default()
            }
            None => NO_CODE.into(),
        },
        Task::Explain => {
            // A question about the project ("where is X defined?") is answered from its
            // map (symbols and whole-word uses); attached code is explained.
            let located = source
                .is_none()
                .then(|| locate::locate(&subject.message, subject.project_map.as_ref()))
                .flatten();
            match (located, &code) {
                (Some(found), _) => serde_json::to_string(&found).unwrap_or_default(),
                (None, Some((code, found_in))) => {
                    let language = language::detect(&subject.message);
                    let mut explained = explain::explain(code, language, found_in.as_deref());
                    // Project code: the map tells where to read on.
                    let shown = snippet
                        .filter(|_| source.is_none())
                        .map(|s| s.path.as_str());
                    let map = subject.project_map.as_ref();
                    if let Some(step) = shown.and_then(|path| locate::related(map, path, language))
                    {
                        explained.learning_steps.push(step);
                    }
                    serde_json::to_string(&explained).unwrap_or_default()
                }
                (None, None) => NO_CODE.into(),
            }
        }
        Task::Docs => match &code {
            Some((code, _)) => explain::document(code),
            None => NO_CODE.into(),
        },
        Task::Chat => "Hello! I'm CodeSherpa's local engine (offline, rule-based). I can review a \
diff, explain code or write its documentation — paste some code and tell me which. For open \
conversation, configure an AI provider with `LLM_PROVIDER`."
            .into(),
    }
}

impl Provider for LocalEngine {
    fn name(&self) -> &'static str {
        "local"
    }

    fn default_model(&self) -> &str {
        MODEL
    }

    fn stream(&self, request: LlmRequest) -> ChunkStream {
        let text = answer(&request);
        let prompt_tokens = estimate_tokens(&request.system)
            + request
                .messages
                .iter()
                .map(|t| estimate_tokens(&t.content))
                .sum::<usize>();
        let usage = Usage {
            prompt_tokens: prompt_tokens as u64,
            completion_tokens: estimate_tokens(&text) as u64,
        };
        // Word-sized pieces, so clients see the same streaming shape as from a model.
        let mut pieces: Vec<Result<Chunk, _>> = text
            .split_inclusive(char::is_whitespace)
            .map(|piece| Ok(Chunk::Delta(piece.to_owned())))
            .collect();
        pieces.push(Ok(Chunk::Usage(usage)));
        Box::pin(stream::iter(pieces))
    }
}
