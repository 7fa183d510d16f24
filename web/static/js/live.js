// The dashboard's live connection: a fresh single-use ticket (POST /api/v1/ws-ticket), then
// /ws?ticket=...; reconnects with a new ticket after a drop, backing off from 0.5 s to 15 s.
import { api } from "./core.js";

export class LiveSocket {
  /** onMessage(message), onState("connecting" | "live" | "offline"). */
  constructor({ onMessage, onState }) {
    this.onMessage = onMessage;
    this.onState = onState;
    this.socket = null;
    this.delay = 500;
    this.timer = null;
    this.stopped = false;
    this.state = "";
  }

  start() {
    this.stopped = false;
    window.addEventListener("online", () => this.reconnectSoon(0));
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.socket) this.socket.close(1000, "page closed");
  }

  setState(state) {
    if (state === this.state) return;
    this.state = state;
    this.onState(state);
  }

  async connect() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.setState("connecting");
    let ticket;
    try {
      ({ ticket } = await api("/api/v1/ws-ticket", { method: "POST" }));
    } catch {
      this.setState("offline");
      this.reconnectSoon();
      return;
    }
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(`${scheme}//${location.host}/ws?ticket=${encodeURIComponent(ticket)}`);
    this.socket = socket;
    socket.addEventListener("message", (event) => {
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (message.type === "subscribed") {
        this.delay = 500;
        this.setState("live");
      }
      this.onMessage(message);
    });
    socket.addEventListener("close", () => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (this.stopped) return;
      this.setState("offline");
      this.reconnectSoon();
    });
  }

  reconnectSoon(delay) {
    if (this.stopped) return;
    clearTimeout(this.timer);
    const wait = delay ?? this.delay;
    this.delay = Math.min(this.delay * 2, 15_000);
    this.timer = setTimeout(() => this.connect(), wait);
  }
}
