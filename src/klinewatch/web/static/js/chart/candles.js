// Candles, volume and indicator lines on TradingView's lightweight-charts (installed from
// npm by scripts/setup, never from a CDN). Shared by the chart page and a monitor's page.
import {
  CandlestickSeries,
  ColorType,
  HistogramSeries,
  LineSeries,
  createChart,
  createSeriesMarkers,
} from "../../vendor/lightweight-charts.standalone.production.mjs";

export { createSeriesMarkers };

export const UP = "#26a69a";
export const DOWN = "#ef5350";
const PALETTE = ["#f0b429", "#4c9aff", "#c77dff", "#2ec4b6", "#ff9f43", "#e5e5e5", "#8ac926"];
// Families drawn over the candles and families drawn in their own pane.
export const OVERLAYS = ["MA", "EMA", "BOLL"];
export const PANES = ["MACD", "RSI"];

/** Seconds since the epoch, as the library wants its time axis. */
export const toTime = (iso) => Math.floor(Date.parse(iso) / 1000);

export function toBar(candle) {
  return {
    time: toTime(candle.open_time),
    open: candle.open,
    high: candle.high,
    low: candle.low,
    close: candle.close,
  };
}

export function toVolume(candle) {
  return {
    time: toTime(candle.open_time),
    value: candle.volume,
    color: candle.close >= candle.open ? "rgba(38,166,154,.45)" : "rgba(239,83,80,.45)",
  };
}

export function newChart(container) {
  return createChart(container, {
    autoSize: true,
    layout: {
      background: { type: ColorType.Solid, color: "#0f141b" },
      textColor: "#8593a5",
      panes: { separatorColor: "#263140", enableResize: true },
    },
    grid: { vertLines: { color: "#1b2430" }, horzLines: { color: "#1b2430" } },
    rightPriceScale: { borderColor: "#263140" },
    timeScale: { borderColor: "#263140", timeVisible: true, secondsVisible: false },
    crosshair: { mode: 0 },
  });
}

/** The candle series and, beneath it on its own scale, the volume histogram. */
export function addCandles(chart) {
  const candles = chart.addSeries(CandlestickSeries, {
    upColor: UP,
    downColor: DOWN,
    borderVisible: false,
    wickUpColor: UP,
    wickDownColor: DOWN,
  });
  const volume = chart.addSeries(HistogramSeries, {
    priceScaleId: "volume",
    priceFormat: { type: "volume" },
    lastValueVisible: false,
    priceLineVisible: false,
  });
  chart.priceScale("volume").applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.05, bottom: 0.22 } });
  return { candles, volume };
}

/**
 * One series per indicator line: overlays on pane 0, each pane family in a pane of its
 * own. Returns ``{key: {series, family}}`` in drawing order, and the legend entries.
 */
export function addIndicators(chart, families, keysByFamily) {
  const lines = {};
  const legend = [];
  let colour = 0;
  let pane = 0;
  for (const family of families) {
    const keys = keysByFamily[family] || [];
    const paneIndex = PANES.includes(family) ? ++pane : 0;
    for (const key of keys) {
      const histogram = key.endsWith("histogram");
      const color = histogram ? "#5d6b7e" : PALETTE[colour++ % PALETTE.length];
      const options = {
        color,
        lineWidth: 1,
        priceLineVisible: false,
        lastValueVisible: paneIndex > 0,
        crosshairMarkerVisible: false,
      };
      const series = chart.addSeries(histogram ? HistogramSeries : LineSeries, options, paneIndex);
      lines[key] = { series, family, histogram };
      legend.push({ key, color });
    }
    if (paneIndex > 0) chart.panes()[paneIndex]?.setStretchFactor(0.35);
  }
  return { lines, legend };
}

/** Points of one indicator line: nulls (TA-Lib's lookback) become gaps. */
export function linePoints(times, values, histogram) {
  const out = new Array(values.length);
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (v === null || v === undefined) out[i] = { time: times[i] };
    else if (histogram) out[i] = { time: times[i], value: v, color: v >= 0 ? "rgba(38,166,154,.6)" : "rgba(239,83,80,.6)" };
    else out[i] = { time: times[i], value: v };
  }
  return out;
}

/** Decimals that show the series' prices as the exchange quotes them (2 to 8): the
 * library's default of 2 would print a 0.0105 coin as 0.01. */
export function pricePrecision(candles) {
  let decimals = 2;
  for (const candle of candles.slice(-200)) {
    for (const value of [candle.open, candle.close]) {
      const text = String(value);
      const dot = text.indexOf(".");
      if (text.includes("e-")) decimals = 8;
      else if (dot >= 0) decimals = Math.max(decimals, text.length - dot - 1);
    }
  }
  return Math.min(8, decimals);
}

/** Apply ``precision`` to every series that is drawn in price units. */
export function showPrices(seriesList, precision) {
  const priceFormat = { type: "price", precision, minMove: 10 ** -precision };
  for (const series of seriesList) series.applyOptions({ priceFormat });
}
