"""GET /websocket: echo over a real WebSocket client, and a clear 400 for plain HTTP."""

import websocket  # the websocket-client package: a client written by someone else


def test_plain_http_request_gets_400_with_a_reason(app):
    response = app.get("/websocket", status=400)
    assert "expected a WebSocket handshake (Upgrade: websocket) on /websocket" in response.text
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
    finally:
        ws.close()


def test_client_close_is_answered_with_its_code(live_server):
    ws = websocket.create_connection(f"{live_server.ws_url}/websocket", timeout=5)
    ws.send_close(4001, b"bye")
    opcode, data = ws.recv_data(control_frame=True)
    assert (opcode, int.from_bytes(data[:2], "big")) == (websocket.ABNF.OPCODE_CLOSE, 4001)
    ws.shutdown()
