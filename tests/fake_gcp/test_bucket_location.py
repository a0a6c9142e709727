"""The fake keeps a bucket's location as Google does (fake-gcs-server alone does not)."""

from __future__ import annotations


def test_a_bucket_reports_the_location_it_was_created_in(fake_gcp):
    from google.cloud import storage
    from google.oauth2.credentials import Credentials

    fake_gcp.add_member("admin@example.com", roles=["roles/owner"], project="loc-proj")
    fake_gcp.storage.create_bucket("placed-bucket", "loc-proj", location="europe-west1")
    owner = storage.Client(project="loc-proj",
                           credentials=Credentials(token=fake_gcp.token_for("admin@example.com")),
                           client_options={"api_endpoint": fake_gcp.url})
    assert owner.get_bucket("placed-bucket").location == "EUROPE-WEST1"
    created = owner.create_bucket("made-bucket", location="asia-east1")
    assert created.location == "ASIA-EAST1"
    assert owner.get_bucket("made-bucket").location == "ASIA-EAST1"
