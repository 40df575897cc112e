"""The HubSpot simulator driven by HubSpot's own Python client (hubspot-api-client), through every
endpoint the connector uses. The client deserializes each answer into HubSpot's published models,
so a missing required field or a wrong shape fails here as it would against a real portal.

What each test asserts is what HubSpot documents; the source is named next to it. Endpoints the
client does not cover (the v3 token endpoint, private-app token info) are called over HTTP as
HubSpot's guides show."""

import json
import uuid

import pytest
import requests
from hubspot import Client
from hubspot.crm.associations.v4 import (
    AssociationSpec,
    BatchInputPublicAssociationMultiPost,
    BatchInputPublicDefaultAssociationMultiPost,
    PublicAssociationMultiPost,
    PublicDefaultAssociationMultiPost,
)
from hubspot.crm.objects import (
    ApiException,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchInputSimplePublicObjectId,
    BatchReadInputSimplePublicObjectId,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)
from hubspot.crm.properties import ApiException as PropertiesApiException
from hubspot.crm.properties import Option, PropertyCreate, PropertyGroupCreate, PropertyUpdate

ALWAYS = {"createdate", "hs_object_id", "lastmodifieddate"}


def client(url, token):
    # The client's default retry is none; an answer is seen as HubSpot gave it.
    return Client.create(access_token=token, host=url)


@pytest.fixture(scope="module")
def hs(sims):
    return client(sims["hubspot"]["url"], sims["hubspot"]["token"])


@pytest.fixture(scope="module")
def portal(hs):
    """A property group and the properties the tests write: a unique key, a number, a checkbox."""
    groups = hs.crm.properties.groups_api
    core = hs.crm.properties.core_api
    groups.create("contacts", property_group_create=PropertyGroupCreate(name="fidelity", label="Fidelity"))
    core.create("contacts", property_create=PropertyCreate(
        name="fid_key", label="Key", type="string", field_type="text", group_name="fidelity",
        has_unique_value=True))
    core.create("contacts", property_create=PropertyCreate(
        name="fid_size", label="Size", type="number", field_type="number", group_name="fidelity"))
    core.create("contacts", property_create=PropertyCreate(
        name="fid_tags", label="Tags", type="enumeration", field_type="checkbox", group_name="fidelity",
        options=[Option(label="a", value="a", display_order=0, hidden=False)]))
    for notes_or_tasks in ("notes", "tasks"):
        core.create(notes_or_tasks, property_create=PropertyCreate(
            name="fid_key", label="Key", type="string", field_type="text",
            group_name="engagement" if notes_or_tasks == "notes" else "task", has_unique_value=True))
    return hs


def upsert(hs, object_type, inputs):
    body = BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
        SimplePublicObjectBatchInputUpsert(id=key, id_property="fid_key", properties=props,
                                           object_write_trace_id=str(i))
        for i, (key, props) in enumerate(inputs)])
    return hs.crm.objects.batch_api.upsert(object_type, batch_input_simple_public_object_batch_input_upsert=body)


def error_of(e):
    return json.loads(e.body)


# Properties API (developers.hubspot.com/docs/api-reference/crm-properties-v3).

def test_properties_are_created_read_and_listed_with_their_definition(portal):
    core = portal.crm.properties.core_api
    p = core.get_by_name("contacts", "fid_tags")
    assert (p.type, p.field_type, p.group_name) == ("enumeration", "checkbox", "fidelity")
    assert [o.value for o in p.options] == ["a"]
    assert p.modification_metadata.read_only_value is False
    names = {p.name for p in core.get_all("contacts").results}
    assert {"fid_key", "fid_size", "fid_tags", "hs_object_id", "createdate", "lastmodifieddate"} <= names
    assert core.get_by_name("contacts", "fid_key").has_unique_value is True


def test_an_enumeration_without_options_is_refused(portal):
    # "options ... Required for enumeration properties" (create a property).
    with pytest.raises(PropertiesApiException) as e:
        portal.crm.properties.core_api.create("contacts", property_create=PropertyCreate(
            name="fid_empty", label="Empty", type="enumeration", field_type="checkbox",
            group_name="fidelity", options=[]))
    assert e.value.status == 400
    assert error_of(e.value)["category"] == "VALIDATION_ERROR"


def test_a_property_created_twice_is_a_conflict(portal):
    with pytest.raises(PropertiesApiException) as e:
        portal.crm.properties.core_api.create("contacts", property_create=PropertyCreate(
            name="fid_size", label="Size", type="number", field_type="number", group_name="fidelity"))
    assert e.value.status == 409
    body = error_of(e.value)
    assert body["category"] == "OBJECT_ALREADY_EXISTS"
    assert body["status"] == "error" and body["correlationId"]


def test_options_are_replaced_by_a_patch(portal):
    core = portal.crm.properties.core_api
    p = core.update("contacts", "fid_tags", property_update=PropertyUpdate(options=[
        Option(label="a", value="a", display_order=0, hidden=False),
        Option(label="b", value="b", display_order=1, hidden=False)]))
    assert [o.value for o in p.options] == ["a", "b"]


# CRM objects, batch (developers.hubspot.com/docs/api-reference/crm-objects-v3).

def test_an_upsert_creates_then_updates_and_echoes_each_trace_id(portal):
    first = upsert(portal, "contacts", [("k-1", {"fid_size": "1"}), ("k-2", {"fid_size": "2"})])
    assert first.status == "COMPLETE"
    assert first.started_at and first.completed_at
    by_trace = {r.object_write_trace_id: r for r in first.results}
    assert set(by_trace) == {"0", "1"}
    assert all(r.new for r in first.results)
    assert by_trace["0"].properties["fid_size"] == "1"
    assert ALWAYS <= set(by_trace["0"].properties)
    again = upsert(portal, "contacts", [("k-1", {"fid_size": "10"})])
    assert again.results[0].new is False
    assert again.results[0].id == by_trace["0"].id


def test_an_upsert_with_one_bad_value_is_a_207_with_errors_per_input(portal):
    # 207 multi-status with errors[] and numErrors on partial failure (batch upsert reference).
    resp = portal.crm.objects.batch_api.upsert_with_http_info(
        "contacts", batch_input_simple_public_object_batch_input_upsert=BatchInputSimplePublicObjectBatchInputUpsert(inputs=[
            SimplePublicObjectBatchInputUpsert(id="k-3", id_property="fid_key", properties={"fid_size": "3"},
                                               object_write_trace_id="good"),
            SimplePublicObjectBatchInputUpsert(id="k-4", id_property="fid_key", properties={"fid_size": "lots"},
                                               object_write_trace_id="bad")]))
    body, status = resp[0], resp[1]
    assert status == 207
    assert body.num_errors == 1
    err = body.errors[0]
    assert err.category == "VALIDATION_ERROR"
    assert err.status == "error"
    assert err.context["ids"] == ["k-4"]
    assert [r.object_write_trace_id for r in body.results] == ["good"]


def test_an_unknown_property_fails_the_whole_batch(portal):
    with pytest.raises(ApiException) as e:
        upsert(portal, "contacts", [("k-5", {"fid_size": "5"}), ("k-6", {"no_such_property": "x"})])
    assert e.value.status == 400
    body = error_of(e.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"]
    assert not portal.crm.objects.batch_api.read("contacts", batch_read_input_simple_public_object_id=
        BatchReadInputSimplePublicObjectId(id_property="fid_key", properties=["fid_key"],
                                           inputs=[SimplePublicObjectId(id="k-5")])).results


def test_a_read_by_a_unique_property_returns_only_what_was_asked_for(portal):
    # "only the requested properties plus createdate, hs_object_id and lastmodifieddate"
    # (hubspot-api-python #357): not even the property read by.
    upsert(portal, "contacts", [("k-7", {"fid_size": "7"})])
    read = portal.crm.objects.batch_api.read("contacts", batch_read_input_simple_public_object_id=
        BatchReadInputSimplePublicObjectId(id_property="fid_key", properties=["fid_size"],
                                           inputs=[SimplePublicObjectId(id="k-7")]))
    assert set(read.results[0].properties) == ALWAYS | {"fid_size"}
    asked = portal.crm.objects.batch_api.read("contacts", batch_read_input_simple_public_object_id=
        BatchReadInputSimplePublicObjectId(id_property="fid_key", properties=["fid_size", "fid_key"],
                                           inputs=[SimplePublicObjectId(id="k-7")]))
    assert asked.results[0].properties["fid_key"] == "k-7"


def test_a_read_naming_a_missing_record_is_a_207_with_object_not_found(portal):
    resp = portal.crm.objects.batch_api.read_with_http_info("contacts", batch_read_input_simple_public_object_id=
        BatchReadInputSimplePublicObjectId(id_property="fid_key", properties=["fid_size"],
                                           inputs=[SimplePublicObjectId(id="k-7"), SimplePublicObjectId(id="nobody")]))
    body, status = resp[0], resp[1]
    assert status == 207
    assert body.errors[0].category == "OBJECT_NOT_FOUND"
    assert body.errors[0].context["ids"] == ["nobody"]
    assert len(body.results) == 1


def test_a_record_is_read_and_patched_by_id(portal):
    created = upsert(portal, "contacts", [("k-8", {"fid_size": "8"})]).results[0]
    one = portal.crm.objects.basic_api.get_by_id("contacts", created.id, properties=["fid_size"])
    assert one.properties["fid_size"] == "8"
    assert set(one.properties) == ALWAYS | {"fid_size"}
    # Without properties: the contact defaults ("Retrieve contacts": createdate, email,
    # firstname, hs_object_id, lastmodifieddate, lastname).
    plain = portal.crm.objects.basic_api.get_by_id("contacts", created.id)
    assert set(plain.properties) == ALWAYS | {"email", "firstname", "lastname"}
    patched = portal.crm.objects.basic_api.update("contacts", created.id,
                                                  simple_public_object_input=SimplePublicObjectInput(properties={"fid_size": ""}))
    assert patched.properties["fid_size"] in (None, "")


def test_a_missing_record_is_a_404(portal):
    with pytest.raises(ApiException) as e:
        portal.crm.objects.basic_api.get_by_id("contacts", "999999999")
    assert e.value.status == 404
    assert error_of(e.value)["category"] == "OBJECT_NOT_FOUND"


def test_a_batch_archive_is_a_204_and_the_record_is_gone(portal):
    created = upsert(portal, "contacts", [("k-9", {"fid_size": "9"})]).results[0]
    resp = portal.crm.objects.batch_api.archive_with_http_info("contacts", batch_input_simple_public_object_id=
        BatchInputSimplePublicObjectId(inputs=[SimplePublicObjectId(id=created.id)]))
    assert resp[1] == 204
    with pytest.raises(ApiException) as e:
        portal.crm.objects.basic_api.get_by_id("contacts", created.id)
    assert e.value.status == 404


def test_a_new_note_needs_hs_timestamp(portal):
    resp = portal.crm.objects.batch_api.upsert_with_http_info("notes", batch_input_simple_public_object_batch_input_upsert=
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=[SimplePublicObjectBatchInputUpsert(
            id="n-1", id_property="fid_key", properties={"hs_note_body": "x"})]))
    assert resp[1] == 207
    assert resp[0].errors[0].category == "VALIDATION_ERROR"


# Associations v4 (developers.hubspot.com/docs/api-reference/crm-associations-v4).

def test_notes_and_tasks_are_associated_with_their_contact_and_listed(portal):
    contact = upsert(portal, "contacts", [("k-10", {"fid_size": "10"})]).results[0].id
    note = portal.crm.objects.batch_api.upsert("notes", batch_input_simple_public_object_batch_input_upsert=
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=[SimplePublicObjectBatchInputUpsert(
            id="n-2", id_property="fid_key",
            properties={"hs_timestamp": "2026-11-22T10:00:00.000Z", "hs_note_body": "x"})])).results[0].id
    task = portal.crm.objects.batch_api.upsert("tasks", batch_input_simple_public_object_batch_input_upsert=
        BatchInputSimplePublicObjectBatchInputUpsert(inputs=[SimplePublicObjectBatchInputUpsert(
            id="t-1", id_property="fid_key",
            properties={"hs_timestamp": "2026-11-22T10:00:00.000Z", "hs_task_subject": "x"})])).results[0].id
    v4 = portal.crm.associations.v4
    labelled = v4.batch_api.create_with_http_info("notes", "contacts", batch_input_public_association_multi_post=
        BatchInputPublicAssociationMultiPost(inputs=[PublicAssociationMultiPost(
            _from={"id": note}, to={"id": contact},
            types=[AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=202)])]))
    assert labelled[1] == 201
    default = v4.batch_api.create_default_with_http_info("tasks", "contacts",
        batch_input_public_default_association_multi_post=BatchInputPublicDefaultAssociationMultiPost(
            inputs=[PublicDefaultAssociationMultiPost(_from={"id": task}, to={"id": contact})]))
    assert default[1] == 200
    notes = v4.basic_api.get_page("contacts", contact, "notes", limit=500)
    assert [str(r.to_object_id) for r in notes.results] == [note]
    tasks = v4.basic_api.get_page("tasks", task, "contacts", limit=500)
    assert [t.type_id for t in tasks.results[0].association_types] == [204]


def test_an_association_to_a_missing_record_is_an_error_per_input(portal):
    contact = upsert(portal, "contacts", [("k-11", {"fid_size": "11"})]).results[0].id
    # The client maps only the 200 of this endpoint to a model; the 207 of a batch with errors
    # (batch endpoints' convention) is read raw.
    raw = portal.crm.associations.v4.batch_api.create_default("notes", "contacts",
        batch_input_public_default_association_multi_post=BatchInputPublicDefaultAssociationMultiPost(
            inputs=[PublicDefaultAssociationMultiPost(_from={"id": "888888888"}, to={"id": contact})]),
        _preload_content=False)
    assert raw.status == 207
    body = json.loads(raw.data)
    assert body["numErrors"] == 1
    assert body["errors"][0]["context"]["fromObjectId"] == ["888888888"]


# Files v3 (developers.hubspot.com/docs/api-reference/files-files-v3).

def test_a_file_is_uploaded_returned_existing_and_gdpr_deleted(portal, tmp_path):
    f = tmp_path / "voice.ogg"
    f.write_bytes(b"OggS" + uuid.uuid4().bytes)
    options = json.dumps({"access": "PRIVATE", "duplicateValidationStrategy": "RETURN_EXISTING",
                          "duplicateValidationScope": "EXACT_FOLDER"})
    first = portal.files.files_api.upload(file=str(f), folder_path="/wa2crm", file_name="voice.ogg", options=options)
    assert first.access == "PRIVATE"
    assert first.size == f.stat().st_size
    # An identical file in the folder comes back as it is (RETURN_EXISTING), with the one status
    # the upload documents: 201.
    again = portal.files.files_api.upload(file=str(f), folder_path="/wa2crm", file_name="voice.ogg", options=options)
    assert again.id == first.id
    # The client's `delete` is the GDPR delete (DELETE /files/v3/files/{fileId}/gdpr-delete).
    _, status, _ = portal.files.files_api.delete_with_http_info(first.id)
    assert status == 204


def test_an_upload_without_access_is_refused(portal, tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"x")
    from hubspot.files import ApiException as FilesApiException
    with pytest.raises(FilesApiException) as e:
        portal.files.files_api.upload(file=str(f), folder_path="/wa2crm", file_name="x.bin", options="{}")
    assert e.value.status == 400


# Authentication and scopes (developers.hubspot.com/docs/api/intro-to-auth; error bodies as in
# hubspot-api-python #129 and hubspot-api-nodejs #432).

def test_a_bad_token_is_a_401_invalid_authentication_with_the_auth_failure_header(sims):
    bad = client(sims["hubspot"]["url"], "pat-na1-not-a-token")
    with pytest.raises(ApiException) as e:
        bad.crm.objects.basic_api.get_by_id("contacts", "1")
    assert e.value.status == 401
    assert error_of(e.value)["category"] == "INVALID_AUTHENTICATION"
    assert e.value.headers["X-HubSpot-Auth-Failure"] == "401 Unauthorized"


def test_a_missing_scope_is_a_403_naming_the_scope(sims):
    narrow = client(sims["hubspot_narrow"]["url"], sims["hubspot_narrow"]["token"])
    with pytest.raises(PropertiesApiException) as e:
        narrow.crm.properties.core_api.create("contacts", property_create=PropertyCreate(
            name="fid_x", label="X", type="string", field_type="text", group_name="contactinformation"))
    assert e.value.status == 403
    body = error_of(e.value)
    assert body["category"] == "MISSING_SCOPES"
    assert body["errors"][0]["context"]["requiredGranularScopes"] == ["crm.schemas.contacts.write"]


def test_private_app_token_info_names_the_portal(sims):
    s = sims["hubspot"]
    r = requests.post(f"{s['url']}/oauth/v2/private-apps/get/access-token-info", json={"tokenKey": s["token"]})
    assert r.status_code == 200
    body = r.json()
    assert isinstance(body["hubId"], int) and body["scopes"]


# Account details (API reference, account information, "Retrieve account details"): every field
# is required; the official Python client has no API for it, so plain HTTP as the docs show it.
def test_account_details_name_the_portal_and_its_web_app(sims):
    s = sims["hubspot"]
    r = requests.get(f"{s['url']}/account-info/v3/details", headers={"Authorization": f"Bearer {s['token']}"})
    assert r.status_code == 200
    body = r.json()
    for field in ["portalId", "accountType", "timeZone", "companyCurrency", "additionalCurrencies",
                  "utcOffset", "utcOffsetMilliseconds", "uiDomain", "dataHostingLocation"]:
        assert field in body, field
    token_info = requests.post(f"{s['url']}/oauth/v2/private-apps/get/access-token-info",
                               json={"tokenKey": s["token"]}).json()
    assert body["portalId"] == token_info["hubId"]
    assert body["uiDomain"].endswith(".hubspot.com")
    r = requests.get(f"{s['url']}/account-info/v3/details", headers={"Authorization": "Bearer pat-na1-wrong"})
    assert r.status_code == 401


# OAuth: the v3 token endpoint takes every parameter in the body (auth-oauth-v3 guide); access
# tokens expire (expires_in, 1800 s); a dead refresh token is BAD_REFRESH_TOKEN.

def refresh(s, refresh_token):
    return requests.post(f"{s['url']}/oauth/v3/token", data={
        "grant_type": "refresh_token", "client_id": s["client_id"], "client_secret": s["client_secret"],
        "refresh_token": refresh_token})


def test_a_refresh_hands_out_an_access_token_the_api_accepts_and_its_info(sims):
    s = sims["hubspot_oauth"]
    r = refresh(s, s["refresh_token"])
    assert r.status_code == 200
    token = r.json()
    assert token["token_type"] == "bearer"
    assert token["expires_in"] > 0 and token["refresh_token"] and token["access_token"]
    info = client(s["url"], token["access_token"]).oauth.access_tokens_api.get(token["access_token"])
    assert info.hub_id and info.expires_in > 0
    assert client(s["url"], token["access_token"]).crm.properties.core_api.get_all("contacts").results


def test_a_dead_refresh_token_is_bad_refresh_token(sims):
    s = sims["hubspot_oauth"]
    r = refresh(s, "not-a-refresh-token")
    assert r.status_code == 400
    assert r.json()["status"] == "BAD_REFRESH_TOKEN"


def test_an_expired_access_token_is_a_401_expired_authentication(sims):
    s = sims["hubspot_expiring"]
    token = refresh(s, s["refresh_token"]).json()["access_token"]
    with pytest.raises(ApiException) as e:
        client(s["url"], token).crm.objects.basic_api.get_by_id("contacts", "1")
    assert e.value.status == 401
    assert error_of(e.value)["category"] == "EXPIRED_AUTHENTICATION"


# Rate limits (developers.hubspot.com/docs/developer-tooling/platform/usage-guidelines): headers on
# every answer, a 429 naming its policy.

def test_every_answer_carries_the_rate_limit_headers(portal):
    _, status, headers = portal.crm.properties.core_api.get_all_with_http_info("contacts")
    assert status == 200
    for h in ("X-HubSpot-RateLimit-Max", "X-HubSpot-RateLimit-Remaining",
              "X-HubSpot-RateLimit-Interval-Milliseconds", "X-HubSpot-RateLimit-Daily",
              "X-HubSpot-RateLimit-Daily-Remaining"):
        assert h in headers, h
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"


def test_past_the_daily_limit_a_429_names_the_daily_policy(sims):
    s = sims["hubspot_daily"]
    daily = client(s["url"], s["token"])
    with pytest.raises(ApiException) as e:
        for _ in range(s["daily"] + 1):
            daily.crm.objects.basic_api.get_by_id("contacts", "1")
    # A 404 is fine until the quota is gone; then the 429.
    assert e.value.status in (404, 429)
    while e.value.status == 404:
        with pytest.raises(ApiException) as e:
            daily.crm.objects.basic_api.get_by_id("contacts", "1")
    body = error_of(e.value)
    assert body["policyName"] == "DAILY"
    assert body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your daily limit."


def test_a_burst_past_the_ten_second_window_is_a_429_ten_secondly_rolling(sims):
    s = sims["hubspot_burst"]
    burst = client(s["url"], s["token"])
    statuses = []
    for _ in range(s["per_10s"] + 1):
        try:
            burst.crm.properties.core_api.get_all("contacts")
            statuses.append(200)
        except Exception as e:  # noqa: BLE001 - the client's ApiException of the properties API
            statuses.append(e.status)
            body = json.loads(e.body)
            assert body["policyName"] in ("TEN_SECONDLY_ROLLING", "SECONDLY")
            assert body["errorType"] == "RATE_LIMIT"
            break
    assert statuses[-1] == 429


# CRM search (developers.hubspot.com/docs/api-reference/search/guide; research §2.2 and §5.1): its
# own per-second limit, eventual consistency, filter limits, literal matching.

from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest  # noqa: E402
import time  # noqa: E402


def search(hs, filter_groups, properties=("phone",), limit=10, deadline_s=10.0):
    """One search, waited out past the per-second limit as a client must (a 429 SECONDLY)."""
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return hs.crm.objects.search_api.do_search("contacts", public_object_search_request=PublicObjectSearchRequest(
                filter_groups=filter_groups, properties=list(properties), limit=limit))
        except ApiException as e:
            if e.status != 429 or time.monotonic() > deadline:
                raise
            time.sleep(0.25)


def phone_is(value, operator="EQ"):
    return FilterGroup(filters=[Filter(property_name="phone", operator=operator, value=value)])


@pytest.fixture(scope="module")
def search_portal(sims):
    return client(sims["hubspot_search"]["url"], sims["hubspot_search"]["token"])


def test_search_matches_the_stored_string_literally(search_portal, sims):
    # The seeded contacts, entered long ago: +49 151 23456789 and 0151 23456789.
    found = search(search_portal, [phone_is("+49 151 23456789")])
    assert found.total == 1
    assert found.results[0].properties["phone"] == "+49 151 23456789"
    assert set(found.results[0].properties) == ALWAYS | {"phone"}
    assert search(search_portal, [phone_is("+4915123456789")]).total == 0
    both = search(search_portal, [FilterGroup(filters=[Filter(
        property_name="phone", operator="IN", values=["+49 151 23456789", "0151 23456789"])])])
    assert both.total == 2


def test_a_contact_written_through_the_api_is_searchable_only_after_the_lag(search_portal, sims):
    from hubspot.crm.objects import SimplePublicObjectInputForCreate
    search_portal.crm.objects.basic_api.create("contacts", simple_public_object_input_for_create=
        SimplePublicObjectInputForCreate(properties={"phone": "+1 415 555 0100"}))
    assert search(search_portal, [phone_is("+1 415 555 0100")]).total == 0, "indexed at once"
    deadline = time.monotonic() + 10
    while search(search_portal, [phone_is("+1 415 555 0100")]).total == 0:
        assert time.monotonic() < deadline, "never indexed"
        time.sleep(0.25)


def test_search_refuses_more_than_5_groups_and_a_limit_over_200(search_portal):
    with pytest.raises(ApiException) as e:
        search(search_portal, [phone_is(str(i)) for i in range(6)])
    assert e.value.status == 400
    with pytest.raises(ApiException) as e:
        search(search_portal, [phone_is("x")], limit=201)
    assert e.value.status == 400


def test_search_has_its_own_per_second_limit_and_names_it(sims):
    # "You have reached your secondly limit." with policyName SECONDLY (research §5.3); at most
    # 4 a second (research §5.1), and no ten-second window.
    s = sims["hubspot_search_burst"]
    hs = client(s["url"], s["token"])
    with pytest.raises(ApiException) as e:
        for _ in range(20):
            hs.crm.objects.search_api.do_search("contacts", public_object_search_request=PublicObjectSearchRequest(
                filter_groups=[phone_is("x")], limit=1))
    assert e.value.status == 429
    body = error_of(e.value)
    assert (body["policyName"], body["message"]) == ("SECONDLY", "You have reached your secondly limit.")
