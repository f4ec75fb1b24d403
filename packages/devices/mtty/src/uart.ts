/**
 * The 16550A-style UART of one mtty port (Linux samples/vfio-mdev/mtty.c, handle_bar_read/handle_bar_write;
 * register names from include/uapi/linux/serial_reg.h). Each port has a 16-byte circular FIFO that is both its
 * transmitter and its receiver: what the guest writes to THR it reads back from RBR (loopback), unless the two ports
 * of a card are wired as a null-modem pair, where THR of one port feeds RBR of the other.
 */

/* Register offsets in the 8-byte I/O BAR. */
/** Receive buffer (read) / transmit holding register (write); DLL while DLAB is set. */
export const UART_RX = 0;
/** Transmit holding register (write). */
export const UART_TX = 0;
/** Interrupt enable; DLM while DLAB is set. */
export const UART_IER = 1;
/** Interrupt identification (read). */
export const UART_IIR = 2;
/** FIFO control (write). */
export const UART_FCR = 2;
/** Line control. */
export const UART_LCR = 3;
/** Modem control. */
export const UART_MCR = 4;
/** Line status. */
export const UART_LSR = 5;
/** Modem status. */
export const UART_MSR = 6;
/** Scratch register. */
export const UART_SCR = 7;

/* Bits. */
export const UART_IER_MSI = 0x08;
export const UART_IER_RLSI = 0x04;
export const UART_IER_THRI = 0x02;
export const UART_IER_RDI = 0x01;
export const UART_IIR_NO_INT = 0x01;
export const UART_IIR_MSI = 0x00;
export const UART_IIR_THRI = 0x02;
export const UART_IIR_RDI = 0x04;
export const UART_IIR_RLSI = 0x06;
export const UART_FCR_ENABLE_FIFO = 0x01;
export const UART_FCR_CLEAR_RCVR = 0x02;
export const UART_FCR_CLEAR_XMIT = 0x04;
export const UART_FCR_TRIGGER_MASK = 0xc0;
export const UART_LCR_DLAB = 0x80;
export const UART_MCR_DTR = 0x01;
export const UART_MCR_RTS = 0x02;
export const UART_MCR_OUT2 = 0x08;
export const UART_MCR_AFE = 0x20;
export const UART_LSR_DR = 0x01;
export const UART_LSR_OE = 0x02;
export const UART_LSR_THRE = 0x20;
export const UART_LSR_TEMT = 0x40;
export const UART_MSR_DCTS = 0x01;
export const UART_MSR_DDSR = 0x02;
export const UART_MSR_CTS = 0x10;
export const UART_MSR_DSR = 0x20;
export const UART_MSR_DCD = 0x80;

/** Depth of the loopback FIFO (MAX_FIFO_SIZE). */
export const MAX_FIFO_SIZE = 16;

/** One port's state (Linux struct serial_port with its struct rxtx). */
export class SerialPort {
  /** The 8 register bytes as last written (IER, LCR, MCR, SCR are read back from here). */
  readonly uartReg = new Uint8Array(8);
  readonly fifo = new Uint8Array(MAX_FIFO_SIZE);
  head = 0;
  tail = 0;
  count = 0;
  dlab = false;
  overrun = false;
  divisor = 0;
  fcr = 0;
  /** 16 with the FIFO enabled (the initial value), 1 without. */
  maxFifoSize = MAX_FIFO_SIZE;
  /** 0 until the guest writes FCR (the device starts zeroed), then 1: mtty always falls back to level 1. */
  intrTriggerLevel = 0;

  /**
   * Whether the FIFO holds nothing. mtty.c compares head and tail, so a FIFO filled to all 16 bytes reads as
   * empty there (and its bytes become unreadable); the count is used here so a full FIFO stays full.
   */
  get empty(): boolean {
    return this.count === 0;
  }

  /** Queues a byte; false (and overrun) when the FIFO is full. */
  push(byte: number): boolean {
    if (this.count >= this.maxFifoSize) {
      this.overrun = true;
      return false;
    }
    this.fifo[this.head] = byte;
    this.count++;
    this.head = (this.head + 1) & (MAX_FIFO_SIZE - 1);
    this.overrun = false;
    return true;
  }

  /** Takes the oldest byte, if any. */
  pop(): number | undefined {
    if (this.empty) return undefined;
    const b = this.fifo[this.tail]!;
    this.count--;
    this.tail = (this.tail + 1) & (MAX_FIFO_SIZE - 1);
    return b;
  }

  clearFifo(): void {
    this.count = 0;
    this.head = 0;
    this.tail = 0;
  }
}

/** How the ports of one card are connected. */
export type MttyWiring = 'loopback' | 'null-modem';

/**
 * The UARTs of one mtty card. `interrupt()` is called whenever the emulation raises the card's interrupt
 * (mtty_trigger_interrupt); which eventfd it reaches is the driver's business.
 */
export class MttyUarts {
  readonly ports: SerialPort[];

  constructor(
    readonly nrPorts: number,
    readonly wiring: MttyWiring,
    private readonly interrupt: () => void,
  ) {
    // The state always has room for two ports, as the C struct does.
    this.ports = [new SerialPort(), new SerialPort()];
  }

  /** The port whose FIFO receives what `index` transmits. */
  #peer(index: number): SerialPort {
    return this.wiring === 'null-modem' && this.nrPorts === 2 ? this.ports[1 - index]! : this.ports[index]!;
  }

  /** Transmitter empty: the own FIFO in loopback; a null-modem transmitter drains to the peer at once. */
  #txEmpty(index: number): boolean {
    return this.#peer(index) === this.ports[index] ? this.ports[index].empty : true;
  }

  /** A guest write of `data` to register `offset` of port `index` (handle_bar_write). */
  write(index: number, offset: number, data: number): void {
    const s = this.ports[index]!;
    switch (offset) {
      case UART_TX: {
        if (s.dlab) {
          s.divisor |= data;
          break;
        }
        const rx = this.#peer(index);
        if (rx.push(data)) {
          // Receive-data interrupt when the receiver's FIFO reaches its trigger level.
          if ((rx.uartReg[UART_IER]! & UART_IER_RDI) !== 0 && rx.count === rx.intrTriggerLevel) this.interrupt();
        } else if ((rx.uartReg[UART_IER]! & UART_IER_RLSI) !== 0) {
          this.interrupt();
        }
        break;
      }
      case UART_IER:
        if (s.dlab) {
          s.divisor |= data << 8;
          break;
        }
        s.uartReg[offset] = data;
        if ((data & UART_IER_THRI) !== 0 && this.#txEmpty(index)) this.interrupt();
        break;
      case UART_FCR:
        s.fcr = data;
        if ((data & (UART_FCR_CLEAR_RCVR | UART_FCR_CLEAR_XMIT)) !== 0) s.clearFifo();
        // mtty computes a level from FCR[7:6] and then always uses 1 (no receive timeout emulation).
        s.intrTriggerLevel = 1;
        s.maxFifoSize = (data & UART_FCR_ENABLE_FIFO) !== 0 ? MAX_FIFO_SIZE : 1;
        break;
      case UART_LCR:
        if ((data & UART_LCR_DLAB) !== 0) {
          s.dlab = true;
          s.divisor = 0;
        } else {
          s.dlab = false;
        }
        s.uartReg[offset] = data;
        break;
      case UART_MCR:
        s.uartReg[offset] = data;
        if ((s.uartReg[UART_IER]! & UART_IER_MSI) !== 0 && (data & UART_MCR_OUT2) !== 0) this.interrupt();
        if ((s.uartReg[UART_IER]! & UART_IER_MSI) !== 0 && (data & (UART_MCR_RTS | UART_MCR_DTR)) !== 0) this.interrupt();
        break;
      case UART_LSR:
      case UART_MSR:
        break;
      case UART_SCR:
        s.uartReg[offset] = data;
        break;
      default:
        break;
    }
  }

  /** A guest read of register `offset` of port `index` (handle_bar_read). */
  read(index: number, offset: number): number {
    const s = this.ports[index]!;
    switch (offset) {
      case UART_RX: {
        if (s.dlab) return s.divisor & 0xff;
        const b = s.pop() ?? 0;
        // Transmitter-empty interrupt once the FIFO drained.
        if (s.empty && (s.uartReg[UART_IER]! & UART_IER_THRI) !== 0) this.interrupt();
        return b;
      }
      case UART_IER:
        if (s.dlab) return (s.divisor >> 8) & 0xff;
        return s.uartReg[offset]! & 0x0f;
      case UART_IIR: {
        const ier = s.uartReg[UART_IER]!;
        let v = 0;
        // Priorities as mtty ORs them: line status, receive data, transmitter empty, modem status (which is 0).
        if ((ier & UART_IER_RLSI) !== 0 && s.overrun) v |= UART_IIR_RLSI;
        if ((ier & UART_IER_RDI) !== 0 && s.count >= s.intrTriggerLevel) v |= UART_IIR_RDI;
        if ((ier & UART_IER_THRI) !== 0 && this.#txEmpty(index)) v |= UART_IIR_THRI;
        if ((ier & UART_IER_MSI) !== 0 && (s.uartReg[UART_MCR]! & (UART_MCR_RTS | UART_MCR_DTR)) !== 0) v |= UART_IIR_MSI;
        if (v === 0) v = UART_IIR_NO_INT;
        return v | 0xc0;
      }
      case UART_LCR:
      case UART_MCR:
      case UART_SCR:
        return s.uartReg[offset]!;
      case UART_LSR: {
        let lsr = 0;
        if (!s.empty) lsr |= UART_LSR_DR;
        if (s.overrun) lsr |= UART_LSR_OE;
        if (this.#txEmpty(index)) lsr |= UART_LSR_TEMT | UART_LSR_THRE;
        return lsr;
      }
      case UART_MSR: {
        let msr = UART_MSR_DSR | UART_MSR_DDSR | UART_MSR_DCD;
        // With auto flow control, CTS only while the FIFO has room.
        if ((s.uartReg[UART_MCR]! & UART_MCR_AFE) === 0 || s.count < s.maxFifoSize) msr |= UART_MSR_CTS | UART_MSR_DCTS;
        return msr;
      }
      default:
        return 0;
    }
  }
}
