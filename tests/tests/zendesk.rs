//! The real binary delivering into the Zendesk simulator: check and provision from the CLI, then
//! webhooks → a requester found by phone or made, internal notes with the files attached on
//! their open ticket, tags in Zendesk's form and mapped fields; erasure from the CLI redacts a
//! person's notes and files and keeps the user and the ticket.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use wa2crm_e2e::{
    ACCESS_TOKEN, Daemon, config_toml, free_port, post_distinct_images, zendesk_account,
    zendesk_note_ids, zendesk_section,
};
use wa2crm_sandbox::graph::GraphSim;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn customers_videos_land_on_their_tickets_and_erasure_redacts_them() {
    let graph = GraphSim::start(ACCESS_TOKEN).await.unwrap();
    let zd = zendesk_account().await;
    // A customer the helpdesk knows, with a ticket open about their device.
    let known = zd.add_user("Jürgen Weiß", Some("+4915112345678"), None);
    let their_ticket = zd.add_ticket(known, "open");
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let extra = format!(
        "{}\n[[tags]]\nname = \"Product Issue\"\nkinds = [\"image\"]\n",
        zendesk_section(&zd.url())
    );
    let mut d = Daemon::new(
        dir.path(),
        &config_toml(dir.path(), port, &graph.url(), &extra),
        port,
    );
    let (ok, out) = d.cli(&["check"]);
    assert!(
        !ok && out.contains("no custom ticket field titled \"WhatsApp media link\""),
        "{out}"
    );
    let (ok, out) = d.cli(&["provision"]);
    assert!(
        ok && out.contains("create ticket field \"WhatsApp media link\" (text)"),
        "{out}"
    );
    let (ok, out) = d.cli(&["check"]);
    assert!(ok, "{out}");
    d.restart().await;

    let senders = ["+4915112345678", "+14155550101", "+14155550102"];
    let n = 12;
    post_distinct_images(&d, &graph, "zd", n, &senders).await;
    d.wait_done(n).await;
    let mut ids = zendesk_note_ids(&zd);
    ids.sort();
    let mut expected: Vec<String> = (0..n).map(|i| format!("wamid.zd.{i}")).collect();
    expected.sort();
    assert_eq!(ids, expected, "one note per media");
    let end_users = zd
        .users()
        .into_iter()
        .filter(|u| u.role == "end-user")
        .count();
    assert_eq!(end_users, 3, "the known customer was found, two made");
    let tickets = zd.tickets();
    assert_eq!(tickets.len(), 3);
    let theirs = tickets.iter().find(|t| t.id == their_ticket).unwrap();
    assert!(theirs.comments.iter().all(|c| !c.public), "internal notes");
    assert!(theirs.comments[0].body.contains("wa2crm: wamid.zd.0"));
    assert!(
        !theirs.comments[0].attachments.is_empty(),
        "the file attached"
    );
    assert!(
        theirs.tags.contains(&"product_issue".to_owned()),
        "{:?}",
        theirs.tags
    );
    let link_field = zd
        .ticket_fields()
        .into_iter()
        .find(|f| f.title == "WhatsApp media link")
        .unwrap();
    let link = theirs.custom_fields[&link_field.id]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        reqwest::get(&link).await.unwrap().status(),
        200,
        "the link plays"
    );

    let (ok, out) = d.cli(&["erase", "--phone", "+4915112345678"]);
    assert!(ok, "{out}");
    let theirs = zd
        .tickets()
        .into_iter()
        .find(|t| t.id == their_ticket)
        .unwrap();
    assert!(
        theirs.comments.iter().all(|c| !c.body.contains("wa2crm: ")
            && c.attachments.iter().all(|a| a.file_name == "redacted.txt")),
        "{:?}",
        theirs.comments
    );
    assert_eq!(theirs.status, "open", "the ticket stays");
    assert!(zd.users().iter().any(|u| u.id == known), "the user stays");
    assert_eq!(zendesk_note_ids(&zd).len(), 8, "the others' notes stay");
}
