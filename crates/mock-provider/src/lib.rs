//! `switchyard-mock-provider`: a real HTTP server that speaks provider dialects exactly (and
//! strictly, like the real APIs), with scripted faults. Used in-process by the gateway's
//! integration tests ([`spawn`] on port 0) and as the `switchyard-mock` binary by the load
//! benchmark.
//!
//! Dialects live in sibling modules (today `openai`); the fault [`Script`] and its directive
//! syntax, request recording, the 404 fallback and the accept loop are shared. Adding a
//! dialect (Anthropic Messages, Gemini, Bedrock, Cohere) means a new module with a
//! `routes() -> Router<App>` merged in `server::router`, reusing `common` (deterministic
//! content, token estimates, timed event bodies with resets, `before_headers`).
//!
//! # Scripting
//! The effective script of a request is [`MockConfig::defaults`] (changeable with
//! [`MockHandle::set_defaults`]), then the keys of a top-level `"mock": {…}` object in the
//! request body, then every `[[mock key=value …]]` directive in the text of the last user
//! message (later wins). Keys: `status ttfb_ms chunk_delay_ms chunks reset_after malformed hang
//! retry_after no_usage cached_tokens reasoning_tokens tool_calls reply` (`reply` uses `_` for
//! spaces in text directives; a bare key means `=1`; `none` / JSON `null` clears an optional
//! key). Unknown keys are a 400. Caps: `chunks` ≤ [`MAX_CHUNKS`], `tool_calls` ≤
//! [`MAX_TOOL_CALLS`].
//!
//! # OpenAI dialect
//! `POST /v1/chat/completions`, `POST /v1/completions`, `POST /v1/embeddings`,
//! `GET /v1/models`, `GET /v1/models/{id}`; `GET /health` answers `ok`; anything else is an
//! OpenAI-shaped 404. Content is deterministic: the reply (default
//! [`DEFAULT_REPLY`]) split into pieces (one per word, or `chunks`), `prompt_tokens` =
//! ceil(characters of all message text / 4) (min 1), `completion_tokens` = pieces (tool calls:
//! 2 argument fragments each) + `reasoning_tokens`.

mod common;
mod native;
mod openai;
mod record;
mod script;
mod server;

pub use common::{DEFAULT_REPLY, estimate_tokens, sample_object, split_reply};
pub use record::RecordedRequest;
pub use script::{DIRECTIVE_KEYS, DirectiveError, MAX_CHUNKS, MAX_TOOL_CALLS, Script};
pub use server::{MockConfig, MockHandle, spawn, spawn_on};
