//! The normalized model every other wa2crm crate speaks.
//!
//! Sources (Meta Cloud API, 360dialog, Twilio) turn their webhooks into [`MediaEvent`]s; the media
//! pipeline turns an event into a [`MediaRecord`]; connectors write records into a CRM through the
//! [`Connector`] trait, mapping canonical attributes to CRM fields with a [`FieldMapping`]. Every
//! failure is an [`Error`] whose [`ErrorKind`] tells the queue whether to retry, wait, refresh or
//! dead-letter. This crate does no I/O, so everything in it can be tested as plain functions.

pub mod config_problem;
pub mod connector;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod mapping;
pub mod matching;
pub mod media_source;
pub mod phone;
pub mod phone_match;
pub mod state;
pub mod tags;
pub mod task;
pub mod timestamp;

pub use connector::{
    CheckReport, Connector, ConnectorConfig, ConnectorContext, ConnectorFactory, ConnectorRegistry,
    ConnectorSettings, Delivered, EraseReport, MediaRecord, Plan, TypedFactory, Usage,
};
pub use error::{Error, ErrorKind, Result};
pub use event::{MediaEvent, MediaKind, MediaRef, Source};
pub use mapping::{CanonicalAttribute, FieldMapping, MappingProblem};
pub use media_source::{MediaBody, MediaSource};
pub use phone::{Phone, PhoneError};
pub use state::{LocalLocks, MemoryStateStore, StateLock, StateStore};
pub use tags::{TagInput, TagRule, TagRules};
pub use task::{MediaFilter, TaskConfig, task_subject};
