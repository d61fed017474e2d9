"""GET /websocket: echo over a real WebSocket client, and a clear 400 for plain HTTP."""

import websocket  # the websocket-client package: a client written by someone else


def test_plain_http_request_gets_400_with_a_reason(app):
    response = app.get("/websocket", status=400)
    assert "expected a WebSocket handshake" in response.text
    assert response.content_type == "text/plain"


def test_echoes_text_and_binary(live_server):
    ws = websocket.create_connection(f"{live_server.ws_url}/websocket", timeout=5)
    try:
        ws.send("hello, gevent ✓")
        assert ws.recv() == "hello, gevent ✓"

        ws.send_binary(b"\x00\x01\xfe\xff")
        opcode, data = ws.recv_data()
        assert opcode == websocket.ABNF.OPCODE_BINARY
        assert data == b"\x00\x01\xfe\xff"
    finally:
        ws.close()


def test_many_messages_come_back_in_order(live_server):
    ws = websocket.create_connection(f"{live_server.ws_url}/websocket", timeout=5)
    try:
        sent = [f"message {n}" for n in range(200)]
        for message in sent:
            ws.send(message)
        assert [ws.recv() for _ in sent] == sent
        large = "x" * 100_000
        ws.send(large)
        assert ws.recv() == large
    finally:
        ws.close()


def test_server_keeps_serving_after_a_client_leaves(live_server):
    first = websocket.create_connection(f"{live_server.ws_url}/websocket", timeout=5)
    first.send("bye")
    assert first.recv() == "bye"
    first.close()
    # A client that vanishes without a close frame.
    dropped = websocket.create_connection(f"{live_server.ws_url}/websocket", timeout=5)
    dropped.sock.close()

    second = websocket.create_connection(f"{live_server.ws_url}/websocket", timeout=5)
    try:
        second.send("still here?")
        assert second.recv() == "still here?"
    finally:
        second.close()
