//! `check` compares the configuration with the live account (the agent the credentials act as,
//! the mapped custom ticket fields and their types, the group, brand and form new tickets go to,
//! the user fields); `provision` creates the custom fields that are missing.

use reqwest::Method;
use serde_json::{Value, json};
use wa2crm_core::{CheckReport, Error, Plan, Result};
use wa2crm_rest::engine::Repeat;

use crate::Zendesk;
use crate::fields::{self, CustomField};
use crate::rules::describe;

impl Zendesk {
    async fn list(&self, what: &str) -> Result<Vec<CustomField>> {
        let a = self.api.get(&format!("/api/v2/{what}")).await?;
        if !a.status.is_success() {
            return Err(Error::permanent(format!(
                "cannot read the {what}: {} ({})",
                describe(&a.body),
                a.status
            )));
        }
        Ok(fields::custom_fields(&a.body[what]))
    }

    /// The user fields the configuration names: (config key, user field key, type it needs).
    fn wanted_user_fields(&self) -> Vec<(&'static str, &str, &'static str)> {
        let mut out = Vec::new();
        if let Some(k) = &self.config.consent_field {
            out.push(("consent_field", k.as_str(), "checkbox"));
        }
        if let Some(k) = &self.config.number_field {
            out.push(("number_field", k.as_str(), "text"));
        }
        out
    }

    pub(crate) async fn check_account(&self) -> Result<CheckReport> {
        let name = &self.name;
        let mut report = CheckReport::default();
        // The first call also proves the credentials.
        let me = self.api.get("/api/v2/users/me").await?;
        if !me.status.is_success() {
            report.problems.push(format!(
                "connectors.{name}: Zendesk refused to say who the credentials act as: {} ({})",
                describe(&me.body),
                me.status
            ));
            return Ok(report);
        }
        let user = &me.body["user"];
        let role = user["role"].as_str().unwrap_or("unknown");
        report.reached = Some(format!(
            "Zendesk account {} as {} ({role})",
            self.api.base.as_str().trim_end_matches('/'),
            user["email"].as_str().unwrap_or("?"),
        ));
        if !matches!(role, "agent" | "admin") {
            report.problems.push(format!(
                "connectors.{name}: the credentials act as a user with the role {role:?}; use an \
                 agent's or admin's API token (an admin's for `provision`)"
            ));
        }
        let ticket_fields = self.list("ticket_fields").await?;
        for (attribute, title) in self.config.fields.iter() {
            match fields::find(&ticket_fields, title) {
                Err(e) => report
                    .problems
                    .push(format!("connectors.{name}.fields.{attribute}: {e}")),
                Ok(f) if !fields::accepted_types(attribute).contains(&f.field_type.as_str()) => {
                    report.problems.push(format!(
                        "connectors.{name}.fields.{attribute}: the ticket field {title:?} is of \
                         type {}; {attribute} needs one of {}",
                        f.field_type,
                        fields::accepted_types(attribute).join(", ")
                    ))
                }
                Ok(_) => {}
            }
        }
        for (key, path, id) in [
            ("group_id", "groups", self.config.group_id),
            ("brand_id", "brands", self.config.brand_id),
            ("ticket_form_id", "ticket_forms", self.config.ticket_form_id),
        ] {
            let Some(id) = id else { continue };
            let a = self.api.get(&format!("/api/v2/{path}/{id}")).await?;
            if !a.status.is_success() {
                report.problems.push(format!(
                    "connectors.{name}.{key}: the account has no {} {id} ({}); Admin Center \
                     shows each one's id",
                    path.trim_end_matches('s').replace('_', " "),
                    a.status
                ));
            }
        }
        let wanted = self.wanted_user_fields();
        if !wanted.is_empty() {
            let user_fields = self.list("user_fields").await?;
            for (config_key, key, field_type) in wanted {
                match user_fields.iter().find(|f| f.key.as_deref() == Some(key)) {
                    None => report.problems.push(format!(
                        "connectors.{name}.{config_key}: the account has no user field with the \
                         key {key:?}: run `wa2crm provision`"
                    )),
                    Some(f) if f.field_type != field_type => report.problems.push(format!(
                        "connectors.{name}.{config_key}: the user field {key:?} is of type {}; \
                         it must be {field_type}",
                        f.field_type
                    )),
                    Some(_) => {}
                }
            }
        }
        report.notes.push(format!(
            "connectors.{name}: media go on {}",
            match self.config.ticket_policy {
                crate::config::TicketPolicy::OpenOrNew =>
                    "the requester's most recent ticket that is not solved or closed, else a new one",
                crate::config::TicketPolicy::NewPerMedia => "a new ticket each",
                crate::config::TicketPolicy::TicketIdFromCaption =>
                    "the requester's own ticket a caption names (#1234), else as open_or_new",
            }
        ));
        Ok(report)
    }

    pub(crate) async fn provision_account(&self, dry_run: bool) -> Result<Plan> {
        let mut plan = Plan::default();
        let ticket_fields = self.list("ticket_fields").await?;
        for (attribute, title) in self.config.fields.iter() {
            if ticket_fields.iter().any(|f| f.title == title) {
                continue;
            }
            let field_type = fields::accepted_types(attribute)[0];
            plan.actions.push(format!(
                "create ticket field {title:?} ({field_type}) for {attribute}"
            ));
            if !dry_run {
                self.create(
                    "ticket_fields",
                    json!({"ticket_field": {"type": field_type, "title": title,
                        "description": format!("wa2crm: the media's {attribute}")}}),
                )
                .await?;
            }
        }
        let wanted = self.wanted_user_fields();
        if !wanted.is_empty() {
            let user_fields = self.list("user_fields").await?;
            for (_, key, field_type) in wanted {
                if user_fields.iter().any(|f| f.key.as_deref() == Some(key)) {
                    continue;
                }
                plan.actions
                    .push(format!("create user field {key:?} ({field_type})"));
                if !dry_run {
                    self.create(
                        "user_fields",
                        json!({"user_field": {"type": field_type, "key": key, "title": key}}),
                    )
                    .await?;
                }
            }
        }
        if !dry_run {
            *self.ticket_fields.lock().await = None;
        }
        Ok(plan)
    }

    async fn create(&self, what: &str, body: Value) -> Result<()> {
        let a = self
            .api
            .call(
                Method::POST,
                &format!("/api/v2/{what}"),
                Some(&body),
                Repeat::Once,
            )
            .await?;
        if a.status.is_success() {
            Ok(())
        } else {
            Err(Error::permanent(format!(
                "Zendesk refused to create {what}: {} ({})",
                describe(&a.body),
                a.status
            )))
        }
    }

    /// The account's custom ticket fields, read once (again after `provision`, or when a mapped
    /// one is not among them: an admin may have just made it).
    pub(crate) async fn ticket_fields(&self, reread: bool) -> Result<Vec<CustomField>> {
        let mut cached = self.ticket_fields.lock().await;
        if self.config.fields.is_empty() {
            return Ok(Vec::new());
        }
        if reread || cached.is_none() {
            *cached = Some(self.list("ticket_fields").await?);
        }
        Ok(cached.clone().unwrap_or_default())
    }
}
