"""discovery_status: what the gateway knows, as JSON."""

from support import SERVICES, json_body, module_version


def method_table(service):
    """{(path, method): auth_required} of a service's routes on the status page."""
    return {(route["path"], method): route["auth_required"]
            for route in service["routes"] for method in route["methods"]}


def test_status_page(client, services):
    response = client.get("/_discovery")
    assert response.status_code == 200
    status = json_body(response)
    assert status["module_version"] == module_version()
    assert isinstance(status["generation"], int)
    assert status["conflicts"] == []
    assert [s["name"] for s in status["services"]] == list(SERVICES)

    by_name = {s["name"]: s for s in status["services"]}
    for name, service in by_name.items():
        port = services[name].port
        assert service["url"] == f"http://127.0.0.1:{port}"
        # users has an upstream {} block of its own name
        assert service["upstream"] == ("users" if name == "users" else f"127.0.0.1:{port}")
        assert (service["state"], service["version"], service["failures"], service["last_error"]) \
            == ("healthy", "1.0", 0, None)

    billing = method_table(by_name["billing"])
    assert set(billing) == {("/billing/invoices", "GET"), ("/billing/invoices", "POST"),
                            ("/billing/invoices/{invoice_id}", "GET")}
    assert billing[("/billing/invoices", "POST")] is True
    assert billing[("/billing/invoices/{invoice_id}", "GET")] is False

    chat = {route["path"]: route for route in by_name["chat"]["routes"]}
    assert list(chat) == ["/chat/intelligent", "/chat/history/{user_id:int}",
                          "/chat/rooms/{room}", "/chat/ws"]
    assert chat["/chat/ws"]["websocket"] is True
    assert chat["/chat/intelligent"]["auth_required"] is True

    assert method_table(by_name["users"]) == {
        ("/users", "GET"): False, ("/users", "POST"): False, ("/users/me", "GET"): True,
        ("/users/{user_id}", "GET"): False, ("/users/{user_id}", "DELETE"): False}
