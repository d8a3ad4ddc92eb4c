// Shares of each expression over the last minutes, from per-second label counts: seeded from
// the server's timeline (hello event) and then counted from every pushed frame record.

export class TimelineStore {
  constructor(classes, seconds = 600) {
    this.classes = classes;
    this.index = new Map(classes.map((name, i) => [name, i]));
    this.seconds = seconds;
    this.buckets = new Map(); // whole second -> {frames, faces, counts}
    this.latest = null; // newest second seen
    this.records = 0; // frame records counted since the page opened
  }

  seed(snapshot) {
    this.buckets.clear();
    this.latest = null;
    for (const bucket of snapshot?.buckets ?? []) {
      this.buckets.set(bucket.t, {
        frames: bucket.frames,
        faces: bucket.faces,
        counts: [...bucket.counts],
      });
      this.latest = this.latest === null ? bucket.t : Math.max(this.latest, bucket.t);
    }
  }

  add(record) {
    const second = Math.floor(Number(record.time));
    if (!Number.isFinite(second)) return;
    let bucket = this.buckets.get(second);
    if (!bucket) {
      bucket = { frames: 0, faces: 0, counts: new Array(this.classes.length).fill(0) };
      this.buckets.set(second, bucket);
    }
    bucket.frames += 1;
    for (const face of record.faces ?? []) {
      const position = this.index.get(face.label);
      if (position === undefined) continue;
      bucket.faces += 1;
      bucket.counts[position] += 1;
    }
    this.records += 1;
    if (this.latest === null || second > this.latest) this.latest = second;
    const oldest = this.latest - this.seconds;
    if (this.buckets.size > this.seconds + 5) {
      for (const key of this.buckets.keys()) if (key <= oldest) this.buckets.delete(key);
    }
  }

  /** `count` bins covering the `rangeS` seconds up to the newest record: shares per class. */
  bins(rangeS, count) {
    const end = this.latest ?? Math.floor(Date.now() / 1000);
    const width = rangeS / count;
    const bins = Array.from({ length: count }, (_, i) => ({
      start: end - rangeS + (i + 1) * width,
      frames: 0,
      faces: 0,
      counts: new Array(this.classes.length).fill(0),
    }));
    for (const [second, bucket] of this.buckets) {
      const age = end - second;
      if (age < 0 || age >= rangeS) continue;
      const bin = bins[count - 1 - Math.floor(age / width)];
      bin.frames += bucket.frames;
      bin.faces += bucket.faces;
      bucket.counts.forEach((value, i) => {
        bin.counts[i] += value;
      });
    }
    for (const bin of bins) bin.shares = bin.counts.map((value) => (bin.faces ? value / bin.faces : 0));
    return bins;
  }
}
