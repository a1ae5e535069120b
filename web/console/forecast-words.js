// Forecasts in words, shared by the SIM page's forecast card (sim-forecast.js) and the
// dashboard's (dashboard.js): how each method forecasts, and a backtest's error, so that both
// pages say the same thing of the same method.

/// The daily methods (`ForecastMethod`): a few words, and a line on what the method does.
const DAILY = {
  SEASONAL_NAIVE: ['repeats last week', 'Each day is expected as the same weekday of the week before.'],
  ETS: ['seasonal trend model', 'A smoothed level, a damped trend and the weekly pattern (Holt-Winters).'],
  DRIFT: ['trend', 'The last day plus the average day-to-day change of the history.'],
  NAIVE: ['yesterday’s level', 'The last complete day, held.'],
  COHORT: ['like similar SIMs', 'Too little history of its own: its recent level with the weekly pattern of SIMs on its tariff plan.'],
};

/// The hourly methods (`HourlyForecastMethod`), likewise.
const HOURLY = {
  NAIVE: ['the last hour’s level', 'The last complete hour, held.'],
  SEASONAL_NAIVE_DAY: ['repeats yesterday hour by hour', 'Each hour is expected as the same hour the day before.'],
  SEASONAL_NAIVE_WEEK: ['repeats last week hour by hour', 'Each hour is expected as the same hour a week before.'],
  DRIFT: ['trend', 'The last hour plus the average hour-to-hour change of the history.'],
  ETS_PROFILE: [
    'seasonal trend model with the day’s shape',
    'Daily totals from a smoothed level, a damped trend and the weekly pattern (Holt-Winters), spread over the hours as the last two weeks’ days were; today’s hours so far move the rest of today.',
  ],
};

/// A method the console has no words for yet still reads as words, not as a code.
function fallback(method) {
  return [String(method || '').toLowerCase().replace(/_/g, ' '), null];
}

/// A daily method: [words, what it does].
export function dailyMethod(method) {
  return DAILY[method] || fallback(method);
}

/// An hourly method: [words, what it does].
export function hourlyMethod(method) {
  return HOURLY[method] || fallback(method);
}

/// A backtest's WAPE in words, "usually within 12 % on past weeks" (`past`: "past weeks",
/// "past days"); null without a backtest.
export function withinWords(wape, past) {
  if (wape === null || wape === undefined) return null;
  const p = Math.max(1, Math.round(Number(wape) * 100));
  return `usually within ${p} % on ${past}`;
}
