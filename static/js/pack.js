// The warehouse's pack screen (templates/warehouse/pack.html). Scans are counted here and kept
// in localStorage per order with the parcels and the confirm's idempotency key, so a reload or
// a dropped connection loses nothing; a confirm that got no answer is sent again, with the same
// key, when the connection returns or with the "send again" button, and the server answers the
// shipment that key made. The server checks every quantity again: this only guides the packer.
(() => {
  "use strict";

  const STORE = "comptoir.pack.";
  const CAMERA_FORMATS = ["ean_13", "ean_8", "upc_a", "upc_e", "code_128", "code_39", "itf", "qr_code"];
  const SAME_CODE_PAUSE_MS = 1500;
  const CAMERA_EVERY_MS = 250;

  const read = (orderId) => {
    try {
      return JSON.parse(localStorage.getItem(STORE + orderId)) || {};
    } catch (error) {
      return {};
    }
  };
  const write = (orderId, value) => {
    try {
      localStorage.setItem(STORE + orderId, JSON.stringify(value));
    } catch (error) {
      // Private mode or a full store: the screen still works, without its safety net.
    }
  };
  const forget = (orderId) => {
    try {
      localStorage.removeItem(STORE + orderId);
    } catch (error) {
      // nothing to forget
    }
  };

  // crypto.getRandomValues works without HTTPS too (randomUUID does not).
  const randomKey = () => {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  };

  const fill = (template, values) =>
    template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));

  // A short low buzz and a vibration: a wrong item must be noticed without looking.
  let audio = null;
  const alarm = () => {
    try {
      const Context = window.AudioContext || window.webkitAudioContext;
      if (Context) {
        audio = audio || new Context();
        const oscillator = audio.createOscillator();
        const gain = audio.createGain();
        oscillator.type = "square";
        oscillator.frequency.value = 196;
        gain.gain.value = 0.15;
        oscillator.connect(gain).connect(audio.destination);
        oscillator.start();
        oscillator.stop(audio.currentTime + 0.35);
      }
    } catch (error) {
      // no sound on this device
    }
    if (navigator.vibrate) navigator.vibrate([150, 80, 150]);
  };

  // EAN-13 and UPC-A name the same product with or without a leading zero.
  const digits = (code) => code.replace(/^0+/, "");

  const setUp = (root) => {
    if (root.dataset.packReady) return;
    root.dataset.packReady = "on";
    const orderId = root.dataset.order;
    if (root.dataset.ready !== "true") {
      // Shipped, held or cancelled meanwhile: what this browser kept for it is of no use.
      forget(orderId);
      return;
    }
    const messages = {};
    for (const [name, value] of Object.entries(root.dataset)) {
      if (name.startsWith("msg")) messages[name.slice(3).toLowerCase()] = value;
    }
    const lines = Array.from(root.querySelectorAll("[data-line]"), (element) => ({
      id: element.dataset.line,
      sku: (element.dataset.sku || "").trim().toLowerCase(),
      ean: digits((element.dataset.ean || "").trim()),
      quantity: Number(element.dataset.quantity),
      label: element.dataset.label,
      element,
    }));
    const total = lines.reduce((sum, line) => sum + line.quantity, 0);
    const work = root.querySelector("[data-pack-work]");
    const scanForm = root.querySelector("[data-pack-scan]");
    const scanField = scanForm.querySelector("input");
    const scanMessage = root.querySelector("[data-scan-message]");
    const confirmForm = root.querySelector("[data-pack-confirm]");
    const confirmButton = root.querySelector("[data-confirm-button]");
    const confirmMessage = root.querySelector("[data-confirm-message]");
    const retry = root.querySelector("[data-retry]");
    const parcelList = root.querySelector("[data-parcels]");
    const parcelTemplate = parcelList.querySelector("[data-parcel]").cloneNode(true);
    const done = root.querySelector("[data-pack-done]");

    const kept = read(orderId);
    const state = {
      key: typeof kept.key === "string" && kept.key ? kept.key : `pack-${orderId}-${randomKey()}`,
      scans: {},
      parcels: Array.isArray(kept.parcels) && kept.parcels.length ? kept.parcels : [{}],
      mode: typeof kept.mode === "string" ? kept.mode : "",
      pending: Boolean(kept.pending),
    };
    for (const line of lines) {
      const count = Number((kept.scans || {})[line.id]) || 0;
      state.scans[line.id] = Math.min(Math.max(Math.floor(count), 0), line.quantity);
    }
    const save = () => write(orderId, state);
    save();
    root.querySelector("[data-pack-key]").value = state.key;

    const scanned = () => lines.reduce((sum, line) => sum + state.scans[line.id], 0);

    const say = (text, bad) => {
      scanMessage.textContent = text;
      scanMessage.classList.toggle("bad", Boolean(bad));
      scanMessage.classList.toggle("ok", !bad && Boolean(text));
    };

    const renderParcels = () => {
      parcelList.replaceChildren(
        ...state.parcels.map((parcel, index) => {
          const row = parcelTemplate.cloneNode(true);
          const number = index + 1;
          row.querySelector("[data-parcel-number]").textContent = number;
          for (const field of row.querySelectorAll("[data-parcel-field]")) {
            const name = field.dataset.parcelField;
            field.id = `${name}-${number}`;
            field.name = `${name}-${number}`;
            field.value = parcel[name] || "";
            field.dataset.parcelIndex = index;
            const label = row.querySelector(`label[for^="${name}-"]`);
            if (label) label.htmlFor = field.id;
          }
          return row;
        }),
      );
    };

    const render = () => {
      for (const line of lines) {
        const count = state.scans[line.id];
        line.element.querySelector("[data-count]").textContent = count;
        line.element.classList.toggle("complete", count === line.quantity);
        line.element.classList.toggle("started", count > 0 && count < line.quantity);
        root.querySelector(`[data-qty="${line.id}"]`).value = count;
      }
      const count = scanned();
      root.querySelector("[data-progress]").textContent = count;
      confirmForm.hidden = count !== total;
    };

    const scan = (raw) => {
      const code = raw.trim();
      if (!code) return;
      const lower = code.toLowerCase();
      const matching = lines.filter(
        (line) => (line.sku && line.sku === lower) || (line.ean && /^\d+$/.test(code) && line.ean === digits(code)),
      );
      if (!matching.length) {
        say(fill(messages.wrong, { code }), true);
        alarm();
        return;
      }
      const line = matching.find((candidate) => state.scans[candidate.id] < candidate.quantity);
      if (!line) {
        say(fill(messages.toomany, { item: matching[0].label }), true);
        alarm();
        return;
      }
      state.scans[line.id] += 1;
      save();
      render();
      say(fill(messages.scanned, { item: line.label, count: state.scans[line.id], quantity: line.quantity }), false);
      if (scanned() === total) {
        const tracking = confirmForm.querySelector("[data-parcel-field=tracking]");
        if (tracking && !tracking.value) tracking.focus();
      }
    };

    scanForm.addEventListener("submit", (event) => {
      event.preventDefault();
      scan(scanField.value);
      scanField.value = "";
      if (scanned() !== total) scanField.focus();
    });

    root.addEventListener("click", (event) => {
      const button = event.target.closest("[data-unscan]");
      if (!button) return;
      const line = lines.find((candidate) => candidate.id === button.dataset.unscan);
      if (!line || state.scans[line.id] === 0) return;
      state.scans[line.id] -= 1;
      save();
      render();
      say(fill(messages.undone, { item: line.label }), false);
    });

    // Parcels: what is typed is kept at once; Enter from a scanner moves on, never confirms.
    parcelList.addEventListener("input", (event) => {
      const field = event.target.closest("[data-parcel-field]");
      if (!field) return;
      state.parcels[Number(field.dataset.parcelIndex)][field.dataset.parcelField] = field.value;
      save();
    });
    parcelList.addEventListener("keydown", (event) => {
      const field = event.target.closest("[data-parcel-field]");
      if (!field || event.key !== "Enter") return;
      event.preventDefault();
      const fields = Array.from(confirmForm.querySelectorAll("input:not([type=hidden]), select"));
      const next = fields[fields.indexOf(field) + 1];
      if (next) next.focus();
    });
    root.querySelector("[data-add-parcel]").addEventListener("click", () => {
      if (state.parcels.length >= Number(parcelList.dataset.max)) return;
      state.parcels.push({});
      save();
      renderParcels();
      const fields = parcelList.querySelectorAll("[data-parcel-field=tracking]");
      fields[fields.length - 1].focus();
    });
    const modeField = confirmForm.querySelector("select[name=shipping_mode_id]");
    if (state.mode && modeField.querySelector(`option[value="${CSS.escape(state.mode)}"]`)) {
      modeField.value = state.mode;
    }
    modeField.addEventListener("change", () => {
      state.mode = modeField.value;
      save();
    });

    const finish = (answer) => {
      forget(orderId);
      state.pending = false;
      stopCamera();
      work.hidden = true;
      confirmForm.hidden = true;
      done.hidden = false;
      root.querySelector("[data-done-text]").textContent = fill(messages.done, { number: answer.shipment.number });
      const note = root.querySelector("[data-done-note]");
      note.textContent = answer.delivery_note.reference;
      note.href = answer.delivery_note.url;
      const next = root.querySelector("[data-next]");
      next.href = answer.next_url;
      next.focus();
    };

    let sending = false;
    const send = async () => {
      if (sending) return;
      sending = true;
      state.pending = true;
      save();
      confirmButton.disabled = true;
      retry.hidden = true;
      confirmMessage.textContent = messages.sending;
      confirmMessage.classList.remove("bad");
      let response = null;
      let answer = null;
      try {
        response = await fetch(confirmForm.action, {
          method: "POST",
          body: new URLSearchParams(new FormData(confirmForm)),
          headers: { Accept: "application/json" },
          credentials: "same-origin",
        });
        answer = await response.json().catch(() => null);
      } catch (error) {
        response = null;
      }
      sending = false;
      confirmButton.disabled = false;
      if (response && response.ok && answer && answer.shipment) {
        finish(answer);
        return;
      }
      if (!response || response.status >= 500 || (response.ok && !answer)) {
        // No answer, a proxy's, or a page that is not ours (a Wi-Fi portal): the shipment may
        // exist. Same key again, so it is made once.
        confirmMessage.textContent = messages.offline;
        confirmMessage.classList.add("bad");
        retry.hidden = false;
        return;
      }
      // Refused (409, 422, an expired form): this key made nothing; the packer decides.
      state.pending = false;
      save();
      confirmMessage.textContent = (answer && answer.error) || messages.failed;
      confirmMessage.classList.add("bad");
      alarm();
    };

    confirmForm.addEventListener("submit", (event) => {
      event.preventDefault();
      send();
    });
    retry.addEventListener("click", send);
    window.addEventListener("online", () => {
      if (state.pending && root.isConnected) send();
    });

    // --- Camera -------------------------------------------------------------------------------
    const cameraButton = root.querySelector("[data-camera]");
    const cameraPanel = root.querySelector("[data-camera-panel]");
    const video = root.querySelector("[data-camera-video]");
    let stream = null;
    let timer = null;
    let lastCode = "";
    let lastAt = 0;

    const polyfill = () =>
      new Promise((resolve, reject) => {
        if ("BarcodeDetector" in window) {
          resolve();
          return;
        }
        const script = document.createElement("script");
        script.src = root.dataset.polyfill;
        script.onload = () => {
          // The polyfill fetches its WebAssembly from a CDN unless told where ours is.
          window.BarcodeDetectionAPI.setZXingModuleOverrides({
            locateFile: (path, prefix) => (path.endsWith(".wasm") ? root.dataset.wasm : prefix + path),
          });
          resolve();
        };
        script.onerror = reject;
        document.head.append(script);
      });

    const detected = (code) => {
      const now = Date.now();
      if (code === lastCode && now - lastAt < SAME_CODE_PAUSE_MS) return;
      lastCode = code;
      lastAt = now;
      if (!confirmForm.hidden) {
        // Everything is scanned: the camera now reads tracking numbers.
        const empty = Array.from(confirmForm.querySelectorAll("[data-parcel-field=tracking]")).find(
          (field) => !field.value,
        );
        if (empty) {
          empty.value = code;
          empty.dispatchEvent(new Event("input", { bubbles: true }));
        }
        return;
      }
      scan(code);
    };

    function stopCamera() {
      if (timer) clearInterval(timer);
      timer = null;
      if (stream) stream.getTracks().forEach((track) => track.stop());
      stream = null;
      cameraPanel.hidden = true;
    }

    const startCamera = async () => {
      try {
        await polyfill();
        let formats = CAMERA_FORMATS;
        if (typeof BarcodeDetector.getSupportedFormats === "function") {
          const supported = await BarcodeDetector.getSupportedFormats();
          formats = CAMERA_FORMATS.filter((format) => supported.includes(format));
        }
        const detector = new BarcodeDetector({ formats });
        stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
        video.srcObject = stream;
        cameraPanel.hidden = false;
        await video.play();
        let busy = false;
        timer = setInterval(async () => {
          if (busy || video.readyState < 2) return;
          busy = true;
          try {
            const codes = await detector.detect(video);
            if (codes.length) detected(codes[0].rawValue);
          } catch (error) {
            // a frame it could not read: the next one will do
          }
          busy = false;
        }, CAMERA_EVERY_MS);
      } catch (error) {
        stopCamera();
        say(messages.camera, true);
      }
    };

    if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
      cameraButton.hidden = false;
      cameraButton.addEventListener("click", () => (stream ? stopCamera() : startCamera()));
      root.querySelector("[data-camera-stop]").addEventListener("click", stopCamera);
    }

    renderParcels();
    render();
    if (state.pending) {
      // A confirm left without an answer (the page was closed or reloaded): send it again.
      confirmMessage.textContent = messages.offline;
      confirmMessage.classList.add("bad");
      retry.hidden = false;
      if (navigator.onLine !== false) send();
    } else if (scanned() !== total) {
      scanField.focus();
    }
  };

  // The queue's pick bar counts the ticked orders (boxes a reload may have kept ticked too).
  const countTicked = () => {
    const form = document.querySelector(".pick-form");
    const count = form && form.querySelector("[data-ticked-count]");
    if (count) count.textContent = form.querySelectorAll("input[name=ids]:checked").length;
  };
  document.addEventListener("change", (event) => {
    if (event.target.closest(".pick-form")) countTicked();
  });

  const scanFor = (root) => {
    if (!root.querySelector) return;
    const screen = root.matches && root.matches("[data-pack]") ? root : root.querySelector("[data-pack]");
    if (screen) setUp(screen);
  };
  scanFor(document);
  countTicked();
  document.addEventListener("htmx:load", (event) => {
    scanFor(event.target);
    countTicked();
  });
})();
