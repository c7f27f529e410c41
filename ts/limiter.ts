// Bounds concurrent executions by threads: each call holds as many slots as engine workers it
// may start, so concurrent calls queue instead of oversubscribing the CPU (each running call also holds one of the engine's runner threads).

export class ThreadBudget {
  private used = 0
  private readonly waiting: Array<{ cost: number; start: () => void }> = []

  constructor(readonly capacity: number) {}

  async run<T>(threads: number, fn: () => Promise<T>): Promise<T> {
    const cost = Math.max(1, Math.min(threads, this.capacity))
    await this.acquire(cost)
    try {
      return await fn()
    } finally {
      this.used -= cost
      this.drain()
    }
  }

  private acquire(cost: number): Promise<void> {
    if (this.waiting.length === 0 && this.used + cost <= this.capacity) {
      this.used += cost
      return Promise.resolve()
    }
    return new Promise((resolve) => this.waiting.push({ cost, start: resolve }))
  }

  // First come, first served: a large call at the head is not starved by small ones behind it.
  private drain() {
    while (this.waiting.length > 0 && this.used + this.waiting[0]!.cost <= this.capacity) {
      const next = this.waiting.shift()!
      this.used += next.cost
      next.start()
    }
  }
}
