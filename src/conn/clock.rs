//! Time, passed in rather than looked up.
//!
//! A connection needs two kinds of time. Deadlines (idle timeout, drain timeout) need a clock that
//! never jumps, so they use [`Instant`]. The echo reply shows the local date and time, which only a
//! wall clock knows, so it uses a [`chrono::NaiveDateTime`]. [`Now`] carries both, read at the same
//! moment.
//!
//! [`Conn`](super::Conn) never reads a clock itself: every `handle_*` method takes a [`Now`]. That
//! is what makes the connection a plain value that tests can drive through an hour of timeouts in a
//! microsecond, and that loom and proptest can replay exactly. The I/O shell reads a [`Clock`] (in
//! production the [`SystemClock`]) and hands the result in; tests use a [`ManualClock`] instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeDelta, TimeZone, Utc};

/// One moment, as both clocks saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// For deadlines: monotonic, so a clock change cannot fire or postpone a timeout.
    pub instant: Instant,
    /// For the echo timestamp: local time without a zone, like Python's `datetime.now()`.
    pub wall: NaiveDateTime,
}

/// Where the I/O shell gets [`Now`] from.
///
/// `Send + Sync + 'static` so one clock can be shared by every connection thread behind an `Arc`.
pub trait Clock: Send + Sync + 'static {
    /// The current moment.
    fn now(&self) -> Now;
}

/// The real clocks: [`Instant::now`] and the local time (which honours `TZ`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        Now {
            instant: Instant::now(),
            wall: local_wall(Utc::now()),
        }
    }
}

/// `utc` as local wall time: what `chrono::Local::now().naive_local()` gives, without its cost
/// per thread.
///
/// chrono keeps the parsed time zone (`TZ`, or the zone file `/etc/localtime`) in a
/// *thread-local* cache, so the first local time each new thread asks for opens, reads and parses
/// the zone file. A thread-per-connection server asks from a new thread for every connection
/// (every `Now` carries the wall time): measured, that was an `open`, a `stat`, a `read` and a parse
/// per greet connection. A zone's offset from UTC only ever changes on a whole second, so one
/// offset per UTC second, shared by every thread through one atomic word, gives the same answers.
/// A change of `TZ` or of the zone file is seen within a second, as with chrono's own cache.
fn local_wall(utc: DateTime<Utc>) -> NaiveDateTime {
    static CACHE: OffsetCache = OffsetCache::new();
    let naive = utc.naive_utc();
    let offset = CACHE.offset(utc.timestamp(), || {
        i64::from(Local.offset_from_utc_datetime(&naive).local_minus_utc())
    });
    naive
        .checked_add_signed(TimeDelta::seconds(offset))
        .unwrap_or(naive)
}

/// The last UTC second [`local_wall`] asked about and the zone's offset then, in one atomic word:
/// `(UTC second << 18) | (offset in seconds + BIAS)`; `u64::MAX` means empty. Offsets are within
/// a day, so they fit in 18 bits; seconds up to 2^46 (far beyond year 100,000). Its own type so
/// the tests can give a fresh one a made-up zone: the machine's own is often UTC, whose offset 0
/// would pass a cache that mangled every offset.
struct OffsetCache(AtomicU64);

impl OffsetCache {
    const BIAS: i64 = 1 << 17;
    const LOW: u32 = 18;

    const fn new() -> Self {
        OffsetCache(AtomicU64::new(u64::MAX))
    }

    /// The zone's offset at UTC `second`: the cached one if the cache holds that second, else
    /// `zone()`'s, which is then cached if it fits.
    fn offset(&self, second: i64, zone: impl FnOnce() -> i64) -> i64 {
        let cached = self.0.load(Ordering::Relaxed); // one self-contained word: nothing to order
        if second >= 0 && (cached >> Self::LOW) as i64 == second {
            return (cached & ((1 << Self::LOW) - 1)) as i64 - Self::BIAS;
        }
        let offset = zone();
        // Below 2^46 - 1, so no stored word is `u64::MAX`, the empty cache.
        if (0..(1 << 46) - 1).contains(&second) && offset.abs() < Self::BIAS {
            self.0.store(
                ((second as u64) << Self::LOW) | (offset + Self::BIAS) as u64,
                Ordering::Relaxed,
            );
        }
        offset
    }
}

/// A clock for tests: a plain value that moves only when you call [`ManualClock::advance`].
///
/// It deliberately does not implement [`Clock`]: advancing needs `&mut self`, and a clock shared
/// between threads would need a lock, which a pure state-machine test has no use for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ManualClock {
    now: Now,
}

impl ManualClock {
    /// The wall time a [`ManualClock::new`] starts at, so tests can write expected timestamps.
    pub fn start_wall() -> NaiveDateTime {
        // A fixed date, so expected replies can be written out literally in tests.
        NaiveDate::from_ymd_opt(2026, 11, 21)
            .and_then(|day| day.and_hms_micro_opt(22, 33, 51, 123_456))
            .unwrap_or_default()
    }

    /// A clock at [`ManualClock::start_wall`]. The instant is the real one at creation: an
    /// [`Instant`] cannot be made any other way, and only differences between instants matter.
    pub fn new() -> Self {
        Self::starting_at(Self::start_wall())
    }

    /// A clock whose wall time starts at `wall`.
    pub fn starting_at(wall: NaiveDateTime) -> Self {
        ManualClock {
            now: Now {
                instant: Instant::now(),
                wall,
            },
        }
    }

    /// The current moment; the same until the next [`ManualClock::advance`].
    pub fn now(&self) -> Now {
        self.now
    }

    /// Moves both clocks forward by `by`. Saturates instead of panicking on absurd durations.
    pub fn advance(&mut self, by: Duration) {
        self.now.instant = later(self.now.instant, by);
        if let Some(wall) = TimeDelta::from_std(by)
            .ok()
            .and_then(|delta| self.now.wall.checked_add_signed(delta))
        {
            self.now.wall = wall;
        }
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

/// `from + by`, for deadlines. [`Instant`] panics on overflow and has no maximum, so an absurd
/// timeout (say `Duration::MAX` from a careless config) is capped at about a century instead.
pub(crate) fn later(from: Instant, by: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);
    from.checked_add(by)
        .or_else(|| from.checked_add(CENTURY))
        .unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_both_clocks_together() {
        let mut clock = ManualClock::new();
        let start = clock.now();
        clock.advance(Duration::from_millis(1500));
        let now = clock.now();
        assert_eq!(now.instant - start.instant, Duration::from_millis(1500));
        assert_eq!(now.wall - start.wall, TimeDelta::milliseconds(1500));
    }

    #[test]
    fn absurd_durations_do_not_panic() {
        let mut clock = ManualClock::new();
        let start = clock.now().instant;
        clock.advance(Duration::MAX);
        assert!(clock.now().instant > start);
        assert!(later(start, Duration::MAX) > start);
    }

    #[test]
    fn system_clock_shows_the_same_local_time_as_chrono_in_any_thread() {
        // Between two readings of chrono's local time, ours must fall between them: the cached
        // offset is chrono's own. A new thread gets the same (it shares the cache).
        let check = || {
            for _ in 0..3 {
                let before = chrono::Local::now().naive_local();
                let ours = SystemClock.now().wall;
                let after = chrono::Local::now().naive_local();
                assert!(
                    before <= ours && ours <= after,
                    "{before} <= {ours} <= {after}"
                );
            }
        };
        check();
        std::thread::spawn(check).join().unwrap();
    }

    #[test]
    fn local_wall_applies_the_offset_of_that_second() {
        let utc = DateTime::from_timestamp(1_795_000_000, 123_456_000).unwrap();
        let expected = utc.with_timezone(&Local).naive_local();
        assert_eq!(local_wall(utc), expected);
        assert_eq!(local_wall(utc), expected, "again, from the cache");
        // Before 1970 the cache is bypassed, and the answer is still chrono's.
        let old = DateTime::from_timestamp(-86_400, 0).unwrap();
        assert_eq!(local_wall(old), old.with_timezone(&Local).naive_local());
    }

    /// A fresh cache, and a zone that counts how often it is asked.
    fn asking(cache: &OffsetCache, second: i64, offset: i64, asked: &mut usize) -> i64 {
        cache.offset(second, || {
            *asked += 1;
            offset
        })
    }

    #[test]
    fn the_cache_answers_each_offset_back_without_asking_the_zone_again() {
        // Zones from UTC-12 to UTC+14, and India's half hour: every offset must come back out
        // of the 18 bits exactly.
        for (second, offset) in [(0, 0), (1, 3600), (7, -43_200), (1_795_000_000, 50_400)] {
            let cache = OffsetCache::new();
            let mut asked = 0;
            assert_eq!(asking(&cache, second, offset, &mut asked), offset);
            assert_eq!(
                asking(&cache, second, 19_800, &mut asked),
                offset,
                "from the cache"
            );
            assert_eq!(asked, 1, "the zone is asked once per second");
            // The next second is asked for (its offset may differ: a zone change).
            assert_eq!(asking(&cache, second + 1, 19_800, &mut asked), 19_800);
            assert_eq!(asked, 2);
        }
    }

    #[test]
    fn what_does_not_fit_is_not_cached() {
        let mut asked = 0;
        // Before 1970, and from 2^46 - 1 on: the zone is asked every time, and what the cache
        // held (second 5) stays there, not overwritten by a word that wrapped around.
        for second in [-86_400, (1 << 46) - 1, 1 << 46] {
            let cache = OffsetCache::new();
            assert_eq!(asking(&cache, 5, -3600, &mut asked), -3600);
            assert_eq!(asking(&cache, second, 7200, &mut asked), 7200);
            assert_eq!(
                asking(&cache, second, 10_800, &mut asked),
                10_800,
                "{second}"
            );
            assert_eq!(asking(&cache, 5, 60, &mut asked), -3600, "{second}");
        }
        // An offset of 2^17 s (36 h) or more, which no zone has, is not cached either: stored,
        // it would spill into the bits of the second and answer for the next one.
        for offset in [OffsetCache::BIAS, -OffsetCache::BIAS, 200_000] {
            let cache = OffsetCache::new();
            assert_eq!(asking(&cache, 20, offset, &mut asked), offset);
            assert_eq!(asking(&cache, 21, 3, &mut asked), 3, "{offset}");
            assert_eq!(asking(&cache, 20, 4, &mut asked), 4, "{offset}");
        }
    }

    #[test]
    fn system_clock_is_monotonic() {
        let a = SystemClock.now();
        let b = SystemClock.now();
        assert!(b.instant >= a.instant);
    }
}
