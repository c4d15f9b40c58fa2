//! What the specialists are and what they answer, below both the providers (`llm/`, whose
//! local engine answers as them) and the pipeline (`orchestrator/`, which picks and runs
//! them): the keyword routing to Review Monk, Codebase Sherpa and Doc Sync, their
//! structured answers (`Review`, `Explanation`) and how those are read out of a reply,
//! and how a question and a line of code are read.

pub mod reading;
pub mod routing;
pub mod schemas;
