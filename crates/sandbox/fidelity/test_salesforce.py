"""The Salesforce simulator driven by simple-salesforce, through every endpoint the connector uses:
the token endpoint, limits, describe, SOQL queries, sObject Collections (create, update, upsert by
external ID, delete), Composite with its subrequest errors and allOrNone, the Tooling API's
CustomField, FieldPermissions and ContentVersion. simple-salesforce raises its typed exceptions
from the status and parses Salesforce's `[{message, errorCode, fields}]` bodies and the
`Sforce-Limit-Info` header, so a wrong status or shape fails here as it would against an org.

Sources are named next to each assertion: the REST API Developer Guide (developer.salesforce.com/
docs/atlas.en-us.api_rest.meta, "REST API" below), the Tooling API guide, and Salesforce Help's
"OAuth 2.0 Authorization Errors"."""

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

VERSION = "62.0"


class PlainHttp(HTTPAdapter):
    """simple-salesforce always speaks https to the instance; the simulator listens on plain
    http on loopback. This adapter sends the same request over http: TLS is not under test."""

    def send(self, request, **kwargs):
        request.url = request.url.replace("https://", "http://", 1)
        return super().send(request, **kwargs)


def login(s):
    r = requests.post(f"{s['url']}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": s["client_id"], "client_secret": s["client_secret"]})
    assert r.status_code == 200, r.text
    return r.json()


def connect(s, session_id=None):
    token = login(s) if session_id is None else {"access_token": session_id, "instance_url": s["url"]}
    session = requests.Session()
    session.mount("https://", PlainHttp())
    return Salesforce(instance_url=token["instance_url"], session_id=token["access_token"],
                      session=session, version=VERSION)


@pytest.fixture(scope="module")
def sf(sims):
    return connect(sims["salesforce"])


@pytest.fixture(scope="module")
def media_fields(sf, sims):
    """The fields wa2crm's provision creates: an external ID, a Number, a Contact lookup."""
    permission_set = sims["salesforce"]["permission_set"]
    for full, metadata in [
        ("WhatsApp_Media__c.WA_Message_Id__c", {"type": "Text", "length": 255, "externalId": True, "unique": True,
                                                "label": "Message Id"}),
        ("WhatsApp_Media__c.Size_Bytes__c", {"type": "Number", "precision": 18, "scale": 0, "label": "Size"}),
        ("WhatsApp_Media__c.Contact__c", {"type": "Lookup", "referenceTo": "Contact", "label": "Contact",
                                          "relationshipName": "WhatsApp_Media"}),
        ("Contact.WhatsApp_Id__c", {"type": "Text", "length": 40, "externalId": True, "unique": True,
                                    "label": "WhatsApp Id"}),
    ]:
        sf.toolingexecute("sobjects/CustomField", method="POST", data={"FullName": full, "Metadata": metadata})
        sf.FieldPermissions.create({"ParentId": permission_set, "SobjectType": full.split(".")[0],
                                    "Field": full, "PermissionsRead": True, "PermissionsEdit": True})
    return sf


# The token endpoint (Salesforce Help, "OAuth 2.0 Client Credentials Flow" and "OAuth 2.0
# Authorization Errors").

def test_a_client_credentials_login_names_the_instance_and_the_identity(sims):
    token = login(sims["salesforce"])
    assert token["token_type"] == "Bearer"
    assert token["instance_url"] == sims["salesforce"]["url"]
    assert "/id/00D" in token["id"]
    # No expires_in: Salesforce's answers carry none; a session ends when a call says so.
    assert "expires_in" not in token


def test_a_wrong_secret_is_refused_in_oauth_words(sims):
    s = sims["salesforce"]
    r = requests.post(f"{s['url']}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": s["client_id"], "client_secret": "wrong"})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_client"
    r = requests.post(f"{s['url']}/services/oauth2/token", data={
        "grant_type": "client_credentials", "client_id": "no-such-app", "client_secret": "wrong"})
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_client_id", "error_description": "client identifier invalid"}


def test_an_unknown_grant_type_is_unsupported(sims):
    r = requests.post(f"{sims['salesforce']['url']}/services/oauth2/token", data={"grant_type": "password"})
    assert r.status_code == 400
    assert r.json()["error"] == "unsupported_grant_type"


# Sessions and limits (REST API, "Status Codes and Error Responses"; "Limits"; the
# Sforce-Limit-Info header in "Response Headers").

def test_a_dead_session_is_a_401_invalid_session_id(sims):
    dead = connect(sims["salesforce"], session_id="00Dsim000000001!ARnot.a.session")
    with pytest.raises(SalesforceExpiredSession) as e:
        dead.limits()
    assert e.value.content[0]["errorCode"] == "INVALID_SESSION_ID"
    assert e.value.content[0]["message"] == "Session expired or invalid"


def test_every_answer_reports_the_daily_api_usage(sf):
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] > limits["DailyApiRequests"]["Remaining"] >= 0
    usage = sf.api_usage["api-usage"]
    assert usage.total == limits["DailyApiRequests"]["Max"]
    before = usage.used
    sf.restful("sobjects/Contact/describe")
    assert sf.api_usage["api-usage"].used == before + 1


def test_past_the_daily_allocation_calls_are_refused_request_limit_exceeded(sims):
    small = connect(sims["salesforce_small"])
    with pytest.raises(SalesforceRefusedRequest) as e:
        for _ in range(sims["salesforce_small"]["allocation"] + 1):
            small.limits()
    assert e.value.status == 403
    assert e.value.content[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


# Describe and field-level security (REST API, "sObject Describe"; Tooling API, "CustomField";
# a new custom field is invisible to a user until a permission set grants it, REST API
# "INVALID_FIELD" for a field the user cannot see).

def test_a_new_custom_field_is_invisible_until_granted(sf, sims):
    sf.toolingexecute("sobjects/CustomField", method="POST", data={
        "FullName": "Contact.Fidelity_Hidden__c", "Metadata": {"type": "Text", "length": 10, "label": "Hidden"}})
    names = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "Fidelity_Hidden__c" not in names
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.query("SELECT Id, Fidelity_Hidden__c FROM Contact WHERE LastName IN ('x')")
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"
    sf.FieldPermissions.create({"ParentId": sims["salesforce"]["permission_set"], "SobjectType": "Contact",
                                "Field": "Contact.Fidelity_Hidden__c", "PermissionsRead": True,
                                "PermissionsEdit": True})
    names = {f["name"] for f in sf.Contact.describe()["fields"]}
    assert "Fidelity_Hidden__c" in names


def test_a_custom_field_created_twice_is_a_duplicate_developer_name(sf):
    data = {"FullName": "Contact.Fidelity_Twice__c", "Metadata": {"type": "Text", "length": 10, "label": "Twice"}}
    sf.toolingexecute("sobjects/CustomField", method="POST", data=data)
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.toolingexecute("sobjects/CustomField", method="POST", data=data)
    assert e.value.content[0]["errorCode"] == "DUPLICATE_DEVELOPER_NAME"


def test_a_checkbox_needs_a_default_value(sf):
    with pytest.raises(SalesforceMalformedRequest) as e:
        sf.toolingexecute("sobjects/CustomField", method="POST", data={
            "FullName": "Contact.Fidelity_Consent__c", "Metadata": {"type": "Checkbox", "label": "Consent"}})
    assert e.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"


def test_describe_of_a_missing_object_is_a_404(sf):
    with pytest.raises(SalesforceResourceNotFound) as e:
        sf.restful("sobjects/No_Such_Object__c/describe")
    assert e.value.content[0]["errorCode"] == "NOT_FOUND"


# sObject Collections (REST API, "sObject Collections": at most 200 records, one result per
# record in order, errors as {statusCode, message, fields}).

def upsert(sf, object_name, field, records):
    return sf.restful(f"composite/sobjects/{object_name}/{field}", method="PATCH",
                      json={"allOrNone": False, "records": records})


def test_an_upsert_by_external_id_creates_then_updates_in_order(media_fields):
    sf = media_fields
    contacts = upsert(sf, "Contact", "WhatsApp_Id__c", [
        {"attributes": {"type": "Contact"}, "WhatsApp_Id__c": "+4915100000001", "LastName": "Weiß"}])
    assert contacts == [{"id": contacts[0]["id"], "success": True, "errors": [], "created": True}]
    assert contacts[0]["id"].startswith("003")
    records = [{"attributes": {"type": "WhatsApp_Media__c"}, "WA_Message_Id__c": f"wamid.{i}", "Size_Bytes__c": i,
                "Contact__r": {"WhatsApp_Id__c": "+4915100000001"}} for i in range(3)]
    first = upsert(sf, "WhatsApp_Media__c", "WA_Message_Id__c", records)
    assert [r["created"] for r in first] == [True, True, True]
    again = upsert(sf, "WhatsApp_Media__c", "WA_Message_Id__c", records)
    assert [r["created"] for r in again] == [False, False, False]
    assert [r["id"] for r in again] == [r["id"] for r in first]
    found = sf.query("SELECT Id, Contact__c FROM WhatsApp_Media__c WHERE WA_Message_Id__c IN ('wamid.0')")
    assert found["totalSize"] == 1 and found["done"] is True
    assert found["records"][0]["attributes"]["type"] == "WhatsApp_Media__c"
    assert found["records"][0]["Contact__c"] == contacts[0]["id"]


def test_a_bad_record_fails_alone_with_its_status_code(media_fields):
    sf = media_fields
    results = upsert(sf, "WhatsApp_Media__c", "WA_Message_Id__c", [
        {"attributes": {"type": "WhatsApp_Media__c"}, "WA_Message_Id__c": "wamid.ok", "Size_Bytes__c": 1},
        {"attributes": {"type": "WhatsApp_Media__c"}, "WA_Message_Id__c": "wamid.bad", "Size_Bytes__c": "big"},
        {"attributes": {"type": "WhatsApp_Media__c"}, "WA_Message_Id__c": "wamid.orphan",
         "Contact__r": {"WhatsApp_Id__c": "+490000"}},
    ])
    assert [r["success"] for r in results] == [True, False, False]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    assert results[1]["errors"][0]["fields"] == ["Size_Bytes__c"]
    assert results[2]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert set(results[1]["errors"][0]) == {"statusCode", "message", "fields"}


def test_an_unknown_field_fails_the_whole_request(media_fields):
    with pytest.raises(SalesforceMalformedRequest) as e:
        upsert(media_fields, "WhatsApp_Media__c", "WA_Message_Id__c", [
            {"attributes": {"type": "WhatsApp_Media__c"}, "WA_Message_Id__c": "wamid.x", "Nope__c": 1}])
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert set(e.value.content[0]) >= {"message", "errorCode"}


def test_more_than_200_records_is_refused(media_fields):
    with pytest.raises(SalesforceMalformedRequest) as e:
        upsert(media_fields, "WhatsApp_Media__c", "WA_Message_Id__c", [
            {"attributes": {"type": "WhatsApp_Media__c"}, "WA_Message_Id__c": f"wamid.many.{i}"} for i in range(201)])
    assert e.value.content[0]["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_an_upsert_by_a_field_that_is_no_external_id_is_refused(media_fields):
    with pytest.raises(SalesforceMalformedRequest) as e:
        upsert(media_fields, "WhatsApp_Media__c", "Size_Bytes__c", [
            {"attributes": {"type": "WhatsApp_Media__c"}, "Size_Bytes__c": 1}])
    assert e.value.content[0]["errorCode"] == "INVALID_FIELD"


def test_a_missing_required_field_fails_its_record(media_fields):
    results = upsert(media_fields, "Contact", "WhatsApp_Id__c", [
        {"attributes": {"type": "Contact"}, "WhatsApp_Id__c": "+4915100000009"}])
    assert results[0]["success"] is False
    assert results[0]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert results[0]["errors"][0]["fields"] == ["LastName"]


def test_records_are_created_updated_and_deleted_by_collections(media_fields):
    sf = media_fields
    created = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, "Subject": "Listen", "ActivityDate": "2026-11-23"},
        {"attributes": {"type": "Task"}, "Subject": "Bad date", "ActivityDate": "tomorrow"}]})
    assert created[0]["success"] is True and created[1]["success"] is False
    task = created[0]["id"]
    assert task.startswith("00T")
    updated = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, "Id": task, "Status": "Completed"}]})
    assert updated == [{"id": task, "success": True, "errors": []}]
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": f"{task},00Tsim999999999999AAA",
                                                                       "allOrNone": "false"})
    assert deleted[0] == {"id": task, "success": True, "errors": []}
    assert deleted[1]["success"] is False
    assert deleted[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"


# Composite (REST API, "Composite": at most 25 subrequests, of them at most 5 queries or
# collections; each subrequest answers with its own httpStatusCode and body; with allOrNone the
# first failure rolls every write back and the others answer PROCESSING_HALTED).

def composite(sf, requests_, all_or_none):
    base = f"/services/data/v{VERSION}"
    return sf.restful("composite", method="POST", json={"allOrNone": all_or_none, "compositeRequest": [
        {"method": m, "url": base + u, "referenceId": f"r{i}", **({"body": b} if b is not None else {})}
        for i, (m, u, b) in enumerate(requests_)]})["compositeResponse"]


def test_composite_subrequests_fail_alone_without_all_or_none(media_fields):
    answers = composite(media_fields, [
        ("GET", "/query?q=SELECT+Id+FROM+Contact+WHERE+WhatsApp_Id__c+IN+('%2B4915100000001')", None),
        ("GET", "/query?q=SELECT+Nope__c+FROM+Contact+WHERE+WhatsApp_Id__c+IN+('x')", None),
    ], False)
    assert [a["httpStatusCode"] for a in answers] == [200, 400]
    assert answers[0]["body"]["totalSize"] == 1
    assert answers[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    assert [a["referenceId"] for a in answers] == ["r0", "r1"]


def test_composite_all_or_none_rolls_back_and_halts_the_rest(media_fields):
    sf = media_fields
    records = {"allOrNone": False, "records": [
        {"attributes": {"type": "WhatsApp_Media__c"}, "WA_Message_Id__c": "wamid.rolled.back", "Size_Bytes__c": 1}]}
    answers = composite(sf, [
        ("PATCH", "/composite/sobjects/WhatsApp_Media__c/WA_Message_Id__c", records),
        ("GET", "/query?q=SELECT+Nope__c+FROM+Contact+WHERE+WhatsApp_Id__c+IN+('x')", None),
    ], True)
    assert answers[1]["httpStatusCode"] == 400
    assert answers[0]["httpStatusCode"] == 400
    assert answers[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    gone = sf.query("SELECT Id FROM WhatsApp_Media__c WHERE WA_Message_Id__c IN ('wamid.rolled.back')")
    assert gone["totalSize"] == 0


def test_composite_refuses_more_than_25_subrequests(media_fields):
    with pytest.raises(SalesforceMalformedRequest):
        composite(media_fields, [("GET", "/sobjects/Contact/describe", None)] * 26, False)


def test_composite_refuses_more_than_5_queries_or_collections(media_fields):
    q = ("GET", "/query?q=SELECT+Id+FROM+Contact+WHERE+WhatsApp_Id__c+IN+('x')", None)
    with pytest.raises(SalesforceMalformedRequest):
        composite(media_fields, [q] * 6, False)


# Files (REST API, "Insert or Update Blob Data": a multipart ContentVersion published on a record,
# with its ContentDocument).

def test_a_file_is_published_on_a_record_as_a_content_version(media_fields):
    sf = media_fields
    contact = upsert(sf, "Contact", "WhatsApp_Id__c", [
        {"attributes": {"type": "Contact"}, "WhatsApp_Id__c": "+4915100000002", "LastName": "Ana"}])[0]["id"]
    import json as _json
    r = sf.session.post(f"{sf.base_url}sobjects/ContentVersion", headers={"Authorization": f"Bearer {sf.session_id}"},
                        files={"entity_content": (None, _json.dumps({"PathOnClient": "voice.ogg", "Title": "voice",
                                                                      "FirstPublishLocationId": contact}),
                                                  "application/json"),
                               "VersionData": ("voice.ogg", b"OggS-bytes", "application/octet-stream")})
    assert r.status_code == 201, r.text
    assert r.json()["success"] is True and r.json()["id"].startswith("068")
    bad = sf.session.post(f"{sf.base_url}sobjects/ContentVersion", headers={"Authorization": f"Bearer {sf.session_id}"},
                          files={"entity_content": (None, _json.dumps({"PathOnClient": "v.ogg",
                                                                        "FirstPublishLocationId": "003nothing"}),
                                                    "application/json"),
                                 "VersionData": ("v.ogg", b"x", "application/octet-stream")})
    assert bad.status_code == 400
    assert bad.json()[0]["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"
