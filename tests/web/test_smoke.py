"""A first look: the subscribe page of a list answers."""

from starlette.testclient import TestClient


def test_subscribe_page(client: TestClient, make_list) -> None:
    make_list()
    r = client.get("/subscribe/cyber-news")
    assert r.status_code == 200, r.text
