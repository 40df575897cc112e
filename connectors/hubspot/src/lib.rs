//! The HubSpot connector, filled in by the HubSpot issue.
//!
//! It will upsert the contact by a unique phone property, write the mapped media properties (or one
//! custom-object record per media) and an optional timeline note, in batches of up to 100, within
//! the portal's rate limits, refreshing OAuth tokens before they expire.
