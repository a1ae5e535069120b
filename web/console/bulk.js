// Bulk jobs: upload a CSV or XLSX of ICCIDs, read what validation found, then confirm or cancel;
// the tenant's jobs (newest first); one job's live progress and its per-row results.
// The flow is the API's (docs/fleet.md, "Bulk jobs"): submitBulkJob (a GraphQL multipart
// request) → report → confirmBulkJob | cancelBulkJob → bulkJobProgress until the final status.

import { h, mount, num, pct, dateTime, duration, table, errorBox, loading, card, stat, field, select, pager, link, listPager } from './ui.js';

// ---- the operations ------------------------------------------------------------------------

const JOB_FIELDS = `id status source fileName action total validRecords invalidRecords alreadyInState
  processed succeeded failed skipped progress etaSeconds summary createdBy confirmedBy cancelledBy
  note failure createdAt confirmedAt startedAt finishedAt heartbeatAt`;

const SUBMIT = `mutation ConsoleSubmitBulkJob($input: SubmitBulkJobInput!) {
  submitBulkJob(input: $input) {
    job { ${JOB_FIELDS} }
    report { validRecords invalidRecords alreadyInState errorsTruncated errors { row iccid reason } }
  }
}`;
const CONFIRM = `mutation ConsoleConfirmBulkJob($id: ID!) { confirmBulkJob(id: $id) { ${JOB_FIELDS} } }`;
const CANCEL = `mutation ConsoleCancelBulkJob($id: ID!) { cancelBulkJob(id: $id) { ${JOB_FIELDS} } }`;
const JOBS = `query ConsoleBulkJobs($tenantId: ID, $statuses: [BulkJobStatus!], $first: Int, $after: String) {
  bulkJobs(tenantId: $tenantId, statuses: $statuses, first: $first, after: $after) {
    nodes { id status source fileName action total validRecords invalidRecords alreadyInState
      processed succeeded failed skipped progress etaSeconds summary createdBy createdAt finishedAt }
    pageInfo { hasNextPage endCursor }
  }
}`;
const JOB = `query ConsoleBulkJob($id: ID!) { bulkJob(id: $id) { ${JOB_FIELDS} } }`;
const ROWS = `query ConsoleBulkJobRows($id: ID!, $outcomes: [BulkRowOutcome!], $first: Int, $after: String) {
  bulkJob(id: $id) {
    id
    rows(outcomes: $outcomes, first: $first, after: $after) {
      nodes { row position iccid action outcome reason networkReference finishedAt }
      pageInfo { hasNextPage endCursor }
    }
  }
}`;
const PROGRESS = `subscription ConsoleBulkJobProgress($id: ID!) {
  bulkJobProgress(id: $id) {
    jobId status total validRecords invalidRecords alreadyInState processed succeeded failed skipped
    progress etaSeconds summary at
  }
}`;

// ---- vocabulary ----------------------------------------------------------------------------

const ACTIONS = [
  ['ACTIVATE', 'Activate (INVENTORY → ACTIVE)'],
  ['SUSPEND', 'Suspend (ACTIVE → SUSPENDED)'],
  ['RESUME', 'Resume (SUSPENDED → ACTIVE)'],
  ['REPORT_LOST_STOLEN', 'Report lost or stolen'],
  ['TERMINATE', 'Terminate (final; unbinds from the device)'],
  ['LOCATION_UPDATE', 'Location update (the device attaches again)'],
];
const STATUSES = ['VALIDATING', 'AWAITING_CONFIRMATION', 'PROCESSING', 'COMPLETED', 'COMPLETED_WITH_ERRORS', 'FAILED', 'CANCELLED'];
const OPEN = ['VALIDATING', 'AWAITING_CONFIRMATION', 'PROCESSING'];
const FINAL = ['COMPLETED', 'COMPLETED_WITH_ERRORS', 'FAILED', 'CANCELLED'];
const OUTCOMES = ['PENDING', 'SENT', 'SUCCEEDED', 'FAILED', 'SKIPPED', 'INVALID'];
const MAX_FILE_BYTES = 20 * 1024 * 1024;
const JOBS_PAGE = 20;
const ROWS_PAGE = 100;
const ERRORS_PAGE = 25;
// At most this many running jobs of the list are followed live at once.
const MAX_LIVE_ROWS = 10;

const badge = (s) => h('span', { class: `badge badge-${s}` }, s);
const actionText = (a) => a || 'per row';
const jobTitle = (j) => j.fileName || (j.source === 'API' ? 'API request (provisionSims)' : `job ${j.id.slice(0, 8)}`);

/// <progress> bounds of a job: processed of the rows to send (a job with nothing to send is
/// full once it has ended).
function progressBounds(j) {
  const max = Math.max(1, Number(j.validRecords) || 0);
  const value = Number(j.validRecords) > 0 ? Math.min(Number(j.processed) || 0, max) : FINAL.includes(j.status) ? 1 : 0;
  return { value, max };
}

/// A table like ui.table whose body rows carry attributes (data-id, data-status…).
function rowTable(columns, rows, { caption, empty, testid, rowAttrs }) {
  const el = table(columns, rows, { caption, empty, testid });
  const trs = el.querySelectorAll ? el.querySelectorAll('tbody tr') : [];
  trs.forEach((tr, i) => {
    const attrs = rowAttrs(rows[i]);
    for (const [k, v] of Object.entries(attrs)) tr.setAttribute(k, String(v));
  });
  return el;
}

function why(role) {
  return role ? role.replace(/_/g, ' ').toLowerCase() : 'your role';
}

// ---- #/bulk --------------------------------------------------------------------------------

export async function render(main, ctx) {
  const { caps, me } = ctx;
  const stops = new Map(); // job id → stop function of its live row
  const urls = [];
  let leaving = false;
  ctx.onLeave(() => {
    leaving = true;
    stops.forEach((stop) => stop());
    stops.clear();
    urls.forEach((u) => URL.revokeObjectURL(u));
  });

  const jobsBox = h('div', {});
  const list = { statuses: null, after: null, pageNo: 1 };

  // ---- upload ----
  let upload;
  if (caps.bulkRun) {
    upload = uploadCard(ctx, urls, () => loadJobs());
  } else {
    const reason =
      me.role === 'OPERATOR'
        ? 'Operators run bulk jobs up to the tenant’s operator limit, which is 0 in this tenant: ask a tenant administrator to raise it (fleet settings) or to run the job.'
        : `Your role (${why(me.role)}) may read bulk jobs but not run them. Tenant and platform administrators run jobs of any size; operators up to the tenant’s limit.`;
    upload = card('Upload a file', h('p', { class: 'notice', 'data-testid': 'bulk-not-allowed' }, reason));
  }

  // ---- the tenant's jobs ----
  const statusFilter = select(
    [['', 'All statuses'], ['OPEN', 'Not finished yet'], ...STATUSES.map((s) => [s, s])],
    '',
    {
      'data-testid': 'bulk-status-filter',
      onchange: (ev) => {
        const v = ev.target.value;
        list.statuses = v === '' ? null : v === 'OPEN' ? OPEN : [v];
        list.after = null;
        list.pageNo = 1;
        loadJobs();
      },
    },
  );
  const jobsCard = h(
    'section',
    { class: 'card' },
    h('h2', {}, 'Jobs'),
    h(
      'div',
      { class: 'toolbar' },
      field('Status', statusFilter),
      h('button', { type: 'button', onclick: () => loadJobs() }, 'Refresh'),
    ),
    jobsBox,
  );

  mount(
    main,
    h('h1', {}, 'Bulk jobs'),
    h('p', { class: 'muted' }, 'Change the state of many SIMs at once from a file: nothing runs until you confirm what validation found.'),
    upload,
    jobsCard,
  );

  // One job's row in the list; replaced in place when live progress arrives.
  const columns = [
    { label: 'Job', value: (j) => link(`/bulk/${encodeURIComponent(j.id)}`, jobTitle(j)) },
    { label: 'Status', value: (j) => badge(j.status) },
    { label: 'Action', value: (j) => actionText(j.action) },
    { label: 'Rows', num: true, value: (j) => num(j.total) },
    {
      label: 'Processed',
      value: (j) => {
        const b = progressBounds(j);
        return h(
          'span',
          { class: 'bulk-mini' },
          h('progress', { max: b.max, value: b.value, 'aria-label': `processed ${j.processed} of ${j.validRecords}` }),
          ` ${num(j.processed)} of ${num(j.validRecords)}`,
        );
      },
    },
    { label: 'Succeeded', num: true, value: (j) => num(j.succeeded) },
    { label: 'Failed', num: true, value: (j) => num(j.failed) },
    { label: 'Skipped', num: true, value: (j) => num(j.skipped) },
    { label: 'Invalid', num: true, value: (j) => num(j.invalidRecords) },
    { label: 'ETA', value: (j) => (j.status === 'PROCESSING' && j.etaSeconds !== null ? duration(j.etaSeconds) : '—') },
    { label: 'Created by', value: (j) => j.createdBy },
    { label: 'Created', value: (j) => dateTime(j.createdAt) },
    { label: 'Finished', value: (j) => dateTime(j.finishedAt) },
  ];
  const rowAttrs = (j) => ({ 'data-id': j.id, 'data-status': j.status });

  function rowOf(j) {
    // A one-row table's <tr>, built the same way as the list's rows.
    const t = rowTable(columns, [j], { testid: null, rowAttrs });
    return t.querySelector('tbody tr');
  }

  // Follows a running job of the list: its row is redrawn with every update.
  function follow(job) {
    if (leaving || stops.has(job.id) || stops.size >= MAX_LIVE_ROWS) return;
    let current = { ...job };
    const stop = ctx.api.subscribe(
      PROGRESS,
      { id: job.id },
      (data) => {
        const p = data.bulkJobProgress;
        current = { ...current, ...p };
        const tr = jobsBox.querySelector(`tr[data-id="${CSS.escape(job.id)}"]`);
        if (!tr) return;
        const focused = tr.contains(document.activeElement);
        const next = rowOf(current);
        tr.replaceWith(next);
        if (focused) {
          const a = next.querySelector('a');
          if (a) a.focus();
        }
        if (FINAL.includes(p.status)) {
          stop();
          stops.delete(job.id);
        }
      },
      (err) => {
        stops.delete(job.id);
        // Say so on the row rather than leave it looking live.
        const tr = jobsBox.querySelector(`tr[data-id="${CSS.escape(job.id)}"]`);
        if (tr && !leaving) {
          tr.cells[1].append(h('small', { class: 'muted' }, ` live updates stopped (${err.message || err}); reload to follow`));
        }
      },
    );
    stops.set(job.id, stop);
  }

  async function loadJobs() {
    stops.forEach((stop) => stop());
    stops.clear();
    mount(jobsBox, loading('Loading jobs…'));
    try {
      const data = await ctx.api.gql(JOBS, {
        tenantId: ctx.tenantId,
        statuses: list.statuses,
        first: JOBS_PAGE,
        after: list.after,
      });
      if (leaving) return;
      const { nodes, pageInfo } = data.bulkJobs;
      mount(
        jobsBox,
        rowTable(columns, nodes, {
          caption: `Newest first · page ${list.pageNo}`,
          empty: list.statuses ? 'No job has this status.' : 'No bulk job yet.',
          testid: 'bulk-jobs',
          rowAttrs,
        }),
        listPager(pageInfo, list, loadJobs),
      );
      nodes.filter((j) => j.status === 'PROCESSING' || j.status === 'VALIDATING').forEach(follow);
    } catch (err) {
      mount(jobsBox, errorBox(err));
    }
  }

  await loadJobs();
  main.dataset.ready = 'bulk';
}

/// The upload form and, once submitted, the validation report with Confirm / Cancel.
function uploadCard(ctx, urls, refreshJobs) {
  const { caps } = ctx;
  const file = h('input', {
    type: 'file',
    name: 'file',
    accept: '.csv,.xlsx,text/csv,application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
    required: true,
    'data-testid': 'bulk-file',
  });
  const action = select([['', 'Per row (the file’s action column)'], ...ACTIONS], '', { name: 'action', 'data-testid': 'bulk-action' });
  const format = select(
    [['', 'From the file name (.csv, .xlsx)'], ['CSV', 'CSV'], ['XLSX', 'XLSX']],
    '',
    { name: 'format', 'data-testid': 'bulk-format' },
  );
  const note = h('input', { type: 'text', name: 'note', maxlength: 500, placeholder: 'e.g. pause the Berlin pilot' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'bulk-submit' }, 'Upload and validate');
  const status = h('div', { 'aria-live': 'polite' });
  const report = h('div', {});

  // A template to start from: the two columns the API reads.
  const templateUrl = URL.createObjectURL(new Blob(['iccid,action\r\n'], { type: 'text/csv' }));
  urls.push(templateUrl);

  const limit =
    caps.bulkLimit !== null && caps.bulkLimit !== undefined
      ? h('p', { class: 'notice', 'data-testid': 'bulk-limit' }, `As an operator you may change up to ${num(caps.bulkLimit)} SIMs in one job (the tenant’s operator limit); larger files are refused — ask a tenant administrator, or split the file.`)
      : null;

  const form = h(
    'form',
    {
      class: 'bulk-form',
      'data-testid': 'bulk-form',
      novalidate: true, // checked here (naming the problem) and by the server
      onsubmit: async (ev) => {
        ev.preventDefault();
        const f = file.files && file.files[0];
        if (!f) {
          mount(status, errorBox({ message: 'Choose a CSV or XLSX file first.' }));
          file.focus();
          return;
        }
        if (f.size > MAX_FILE_BYTES) {
          mount(status, errorBox({ message: `${f.name} is ${(f.size / 1048576).toFixed(1)} MB; a bulk file may be at most 20 MB. Split it into several jobs.` }));
          return;
        }
        submit.disabled = true;
        mount(report);
        mount(status, loading(`Uploading ${f.name} and validating every row…`));
        try {
          const input = {
            file: null,
            action: action.value || null,
            format: format.value || null,
            note: note.value.trim() || null,
            tenantId: ctx.tenantId,
          };
          const data = await ctx.api.upload(SUBMIT, { input }, { 'input.file': f });
          mount(status);
          mount(report, reportView(ctx, data.submitBulkJob, refreshJobs));
          refreshJobs();
          const heading = report.querySelector('h2');
          if (heading) heading.focus();
        } catch (err) {
          mount(status, errorBox(err));
        } finally {
          submit.disabled = false;
        }
      },
    },
    h(
      'div',
      { class: 'grid' },
      field(
        'File (CSV or XLSX)',
        file,
        'Columns: ICCID (required) and ACTION unless one action is chosen below; other columns are ignored. CSV with “,” or “;” (UTF-8) or XLSX (first sheet); at most 100,000 rows and 20 MB.',
      ),
      field('Action', action, 'One action for every row, or each row’s own from the file’s action column.'),
      field('Format', format),
      field('Note (optional)', note, 'Kept with the job and in every SIM’s audit entry.'),
    ),
    limit,
    h('div', { class: 'actions' }, submit, h('a', { href: templateUrl, download: 'bulk-template.csv' }, 'Download a CSV template')),
    status,
  );
  return h('section', { class: 'card' }, h('h2', {}, 'Upload a file'), form, report);
}

/// What validation found: counts, the invalid rows (paged), Confirm and Cancel.
function reportView(ctx, submission, refreshJobs) {
  const { job, report } = submission;
  const { caps } = ctx;
  const status = h('div', { 'aria-live': 'polite' });
  const errorsBox = h('div', {});
  let page = 0;

  function drawErrors() {
    const errs = report.errors;
    const pages = Math.max(1, Math.ceil(errs.length / ERRORS_PAGE));
    const slice = errs.slice(page * ERRORS_PAGE, (page + 1) * ERRORS_PAGE);
    mount(
      errorsBox,
      table(
        [
          { label: 'Row', num: true, value: (e) => num(e.row) },
          { label: 'ICCID', value: (e) => h('span', { class: 'mono' }, e.iccid || '—') },
          { label: 'Reason', value: (e) => e.reason },
        ],
        slice,
        {
          caption: errs.length
            ? `Rows ${num(page * ERRORS_PAGE + 1)}–${num(page * ERRORS_PAGE + slice.length)} of ${num(errs.length)} listed${report.errorsTruncated ? ' (the first 1,000)' : ''}`
            : null,
          empty: 'No invalid rows.',
          testid: 'bulk-errors',
        },
      ),
      errs.length > ERRORS_PAGE
        ? h(
            'nav',
            { class: 'pager', 'aria-label': 'invalid rows pages' },
            h('span', {}, `Page ${page + 1} of ${pages}`),
            h('button', { type: 'button', disabled: page === 0, onclick: () => { page -= 1; drawErrors(); } }, 'Previous page'),
            h('button', { type: 'button', disabled: page >= pages - 1, onclick: () => { page += 1; drawErrors(); } }, 'Next page'),
          )
        : null,
      report.errorsTruncated
        ? h('p', { class: 'muted' }, 'More rows are invalid than listed here: ', link(`/bulk/${encodeURIComponent(job.id)}?outcome=INVALID`, 'all invalid rows on the job’s page'), '.')
        : null,
    );
  }
  drawErrors();

  const overLimit = caps.bulkLimit !== null && caps.bulkLimit !== undefined && report.validRecords > caps.bulkLimit;
  const confirm = h(
    'button',
    {
      type: 'button',
      class: 'primary',
      'data-testid': 'bulk-confirm',
      disabled: overLimit,
      title: overLimit ? `More than your limit of ${caps.bulkLimit} SIMs` : null,
      onclick: async () => {
        confirm.disabled = true;
        cancel.disabled = true;
        mount(status, loading('Confirming…'));
        try {
          const data = await ctx.api.gql(CONFIRM, { id: job.id });
          ctx.navigate(`/bulk/${encodeURIComponent(data.confirmBulkJob.id)}`);
        } catch (err) {
          mount(status, errorBox(err));
          confirm.disabled = overLimit;
          cancel.disabled = false;
        }
      },
    },
    report.validRecords > 0 ? `Confirm: send ${num(report.validRecords)} SIM${report.validRecords === 1 ? '' : 's'} to the network` : 'Confirm (nothing to send; the job ends at once)',
  );
  const cancel = h(
    'button',
    {
      type: 'button',
      class: 'danger',
      'data-testid': 'bulk-cancel',
      onclick: async () => {
        confirm.disabled = true;
        cancel.disabled = true;
        mount(status, loading('Cancelling…'));
        try {
          const data = await ctx.api.gql(CANCEL, { id: job.id });
          mount(status, h('p', { class: 'notice', role: 'status' }, `Cancelled: nothing was sent. ${data.cancelBulkJob.summary}`));
          refreshJobs();
        } catch (err) {
          mount(status, errorBox(err));
          confirm.disabled = overLimit;
          cancel.disabled = false;
        }
      },
    },
    'Cancel job',
  );

  return h(
    'section',
    {
      class: 'bulk-report',
      'data-testid': 'bulk-report',
      'data-job-id': job.id,
      'data-valid': report.validRecords,
      'data-invalid': report.invalidRecords,
      'data-already': report.alreadyInState,
    },
    h('h2', { tabindex: '-1' }, `Validation report: ${jobTitle(job)}`),
    h('p', {}, job.summary),
    h(
      'div',
      { class: 'stats' },
      stat('Rows in the file', num(job.total)),
      stat('Valid: will be sent', num(report.validRecords), { testid: 'bulk-valid' }),
      stat('Invalid: never sent', num(report.invalidRecords), { testid: 'bulk-invalid' }),
      stat('Already in the state: skipped', num(report.alreadyInState), { testid: 'bulk-already' }),
    ),
    h('h3', {}, 'Invalid rows'),
    errorsBox,
    overLimit ? h('p', { class: 'error' }, `${num(report.validRecords)} SIMs is more than your limit of ${num(caps.bulkLimit)}: ask a tenant administrator, or split the file.`) : null,
    h(
      'div',
      { class: 'actions' },
      confirm,
      cancel,
      link(`/bulk/${encodeURIComponent(job.id)}`, 'Open the job’s page'),
    ),
    h('p', { class: 'muted' }, 'Nothing runs until you confirm. Confirming sends the valid rows in file order; invalid and already-done rows are never sent.'),
    status,
  );
}

// ---- #/bulk/<id> ---------------------------------------------------------------------------

export async function renderJob(main, ctx) {
  const { caps } = ctx;
  const id = ctx.params.id;
  let stopLive = null;
  let leaving = false;
  ctx.onLeave(() => {
    leaving = true;
    if (stopLive) stopLive();
    stopLive = null;
  });

  let job;
  try {
    job = (await ctx.api.gql(JOB, { id })).bulkJob;
  } catch (err) {
    mount(main, link('/bulk', '← Bulk jobs'), h('h1', {}, 'Bulk job'), errorBox(err));
    main.dataset.ready = 'bulk-job';
    return;
  }
  if (!job) {
    mount(
      main,
      link('/bulk', '← Bulk jobs'),
      h('h1', {}, 'Bulk job not found'),
      h('p', { 'data-testid': 'bulk-not-found' }, 'There is no bulk job with this id in your tenant.'),
    );
    main.dataset.ready = 'bulk-job';
    return;
  }

  // ---- the parts that live updates change ----
  const statusEl = h('span', { 'data-testid': 'bulk-status' });
  const liveEl = h('span', { class: 'muted bulk-live' });
  const summaryEl = h('p', { 'data-testid': 'bulk-summary', 'aria-live': 'polite' });
  const progressEl = h('progress', { 'data-testid': 'bulk-progress', 'aria-label': 'rows processed' });
  const progressText = h('span', { class: 'muted' });
  const failureEl = h('div', {});
  const values = {};
  const statBox = (key, label, hint) => {
    values[key] = h('span', {});
    return stat(label, values[key], { testid: `bulk-stat-${key}`, hint });
  };
  const stats = h(
    'div',
    { class: 'stats' },
    statBox('total', 'Rows in the file'),
    statBox('processed', 'Processed', 'of the rows to send'),
    statBox('succeeded', 'Succeeded'),
    statBox('failed', 'Failed'),
    statBox('skipped', 'Skipped', 'already in the asked state'),
    statBox('invalid', 'Invalid', 'refused by validation'),
  );
  const etaEl = h('span', { 'data-testid': 'bulk-eta' });
  const actionsStatus = h('div', { 'aria-live': 'polite' });
  const actionsEl = h('div', { class: 'actions' });
  const detailsEl = h('dl', { class: 'props' });

  function drawActions() {
    const buttons = [];
    if (job.status === 'AWAITING_CONFIRMATION') {
      const overLimit = caps.bulkLimit !== null && caps.bulkLimit !== undefined && job.validRecords > caps.bulkLimit;
      const reason = !caps.bulkRun ? `Your role (${why(ctx.me.role)}) may not run bulk jobs` : overLimit ? `More than your limit of ${caps.bulkLimit} SIMs` : null;
      buttons.push(
        h(
          'button',
          { type: 'button', class: 'primary', 'data-testid': 'bulk-confirm', disabled: Boolean(reason), title: reason, onclick: () => act(CONFIRM, 'confirmBulkJob', 'Confirming…') },
          job.validRecords > 0 ? `Confirm: send ${num(job.validRecords)} SIM${job.validRecords === 1 ? '' : 's'}` : 'Confirm (nothing to send)',
        ),
      );
      if (reason) buttons.push(h('span', { class: 'muted' }, `${reason}.`));
    }
    if (OPEN.includes(job.status)) {
      const reason = caps.manageFleet ? null : `Your role (${why(ctx.me.role)}) may not cancel bulk jobs`;
      buttons.push(
        h(
          'button',
          { type: 'button', class: 'danger', 'data-testid': 'bulk-cancel', disabled: Boolean(reason), title: reason, onclick: () => act(CANCEL, 'cancelBulkJob', 'Cancelling…') },
          job.status === 'PROCESSING' ? 'Cancel: send no further rows' : 'Cancel job',
        ),
      );
      if (reason) buttons.push(h('span', { class: 'muted' }, `${reason}.`));
    }
    mount(actionsEl, buttons);
  }

  async function act(mutation, field, what) {
    actionsEl.querySelectorAll('button').forEach((b) => { b.disabled = true; });
    mount(actionsStatus, loading(what));
    try {
      const data = await ctx.api.gql(mutation, { id: job.id });
      mount(actionsStatus);
      job = data[field];
      draw();
      if (!FINAL.includes(job.status)) startLive();
      else loadRows();
    } catch (err) {
      mount(actionsStatus, errorBox(err));
      drawActions();
    }
  }

  function drawDetails() {
    const items = [
      ['Action', actionText(job.action)],
      ['Source', job.source === 'API' ? 'API (provisionSims)' : 'File upload'],
      ['File', job.fileName || '—'],
      ['Job id', h('span', { class: 'mono' }, job.id)],
      ['Created', `${dateTime(job.createdAt)} by ${job.createdBy}`],
      ['Confirmed', job.confirmedAt ? `${dateTime(job.confirmedAt)}${job.confirmedBy ? ` by ${job.confirmedBy}` : ''}` : '—'],
      ['Started', dateTime(job.startedAt)],
      ['Finished', dateTime(job.finishedAt)],
      job.cancelledBy ? ['Cancelled by', job.cancelledBy] : null,
      ['Last heartbeat', dateTime(job.heartbeatAt)],
      ['Note', job.note || '—'],
    ].filter(Boolean);
    mount(detailsEl, items.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
  }

  // Everything the job's counters show, from the job or a progress update.
  function drawCounters() {
    statusEl.className = `badge badge-${job.status}`;
    statusEl.dataset.status = job.status;
    statusEl.textContent = job.status;
    summaryEl.textContent = job.summary;
    const b = progressBounds(job);
    progressEl.max = b.max;
    progressEl.value = b.value;
    progressText.textContent = `${num(job.processed)} of ${num(job.validRecords)} rows to send processed (${pct(job.progress)})`;
    values.total.textContent = num(job.total);
    values.processed.textContent = `${num(job.processed)} of ${num(job.validRecords)}`;
    values.succeeded.textContent = num(job.succeeded);
    values.failed.textContent = num(job.failed);
    values.skipped.textContent = num(job.skipped);
    values.invalid.textContent = num(job.invalidRecords);
    etaEl.textContent =
      job.status === 'PROCESSING'
        ? job.etaSeconds !== null && job.etaSeconds !== undefined
          ? ` · about ${duration(job.etaSeconds)} left at the pace so far`
          : ' · time left known after the first outcome'
        : '';
    mount(failureEl, job.failure ? errorBox({ message: `The job failed as a whole: ${job.failure}` }) : null);
  }

  function draw() {
    drawCounters();
    drawActions();
    drawDetails();
  }

  // ---- live progress ----
  function setLive(on, text) {
    liveEl.replaceChildren(h('span', { class: `live-dot${on ? ' on' : ''}`, 'aria-hidden': 'true' }), text);
  }

  function startLive() {
    if (stopLive || leaving) return;
    setLive(true, 'live');
    stopLive = ctx.api.subscribe(
      PROGRESS,
      { id: job.id },
      (data) => {
        const p = data.bulkJobProgress;
        const was = job.status;
        job = { ...job, ...p, id: job.id };
        drawCounters();
        if (was !== p.status) drawActions();
        if (FINAL.includes(p.status)) {
          // The stream ends after the final status: read the job once more (timestamps,
          // who cancelled) and the rows' outcomes.
          if (stopLive) stopLive();
          stopLive = null;
          setLive(false, 'finished');
          refresh();
        }
      },
      (err) => {
        stopLive = null;
        setLive(false, 'not live');
        mount(actionsStatus, errorBox(err), h('button', { type: 'button', onclick: () => { mount(actionsStatus); refresh().then(() => { if (!FINAL.includes(job.status)) startLive(); }); } }, 'Reconnect'));
      },
    );
  }

  async function refresh() {
    try {
      const fresh = (await ctx.api.gql(JOB, { id: job.id })).bulkJob;
      if (fresh && !leaving) {
        job = fresh;
        draw();
        loadRows();
      }
    } catch (err) {
      if (!leaving) mount(actionsStatus, errorBox(err));
    }
  }

  // ---- rows ----
  const initialOutcome = OUTCOMES.includes(ctx.query.get('outcome')) ? ctx.query.get('outcome') : '';
  const rowsState = { outcome: initialOutcome, after: null, pageNo: 1 };
  const rowsBox = h('div', {});
  const outcomeFilter = select([['', 'All outcomes'], ...OUTCOMES.map((o) => [o, o])], initialOutcome, {
    'data-testid': 'bulk-outcome-filter',
    onchange: (ev) => {
      rowsState.outcome = ev.target.value;
      rowsState.after = null;
      rowsState.pageNo = 1;
      loadRows();
    },
  });

  async function loadRows() {
    mount(rowsBox, loading('Loading rows…'));
    try {
      const data = await ctx.api.gql(ROWS, {
        id: job.id,
        outcomes: rowsState.outcome ? [rowsState.outcome] : null,
        first: ROWS_PAGE,
        after: rowsState.after,
      });
      if (leaving) return;
      const conn = data.bulkJob ? data.bulkJob.rows : { nodes: [], pageInfo: { hasNextPage: false } };
      mount(
        rowsBox,
        rowTable(
          [
            { label: 'Row', num: true, value: (r) => num(r.row) },
            {
              label: 'ICCID',
              value: (r) => (caps.readSims && /^\d{18,22}$/.test(r.iccid) && r.outcome !== 'INVALID' ? link(`/sims/${encodeURIComponent(r.iccid)}`, r.iccid, { class: 'mono' }) : h('span', { class: 'mono' }, r.iccid || '—')),
            },
            { label: 'Action', value: (r) => r.action || '—' },
            { label: 'Outcome', value: (r) => badge(r.outcome) },
            { label: 'Reason', value: (r) => r.reason || '—' },
            { label: 'Network reference', value: (r) => (r.networkReference ? h('span', { class: 'mono' }, r.networkReference) : '—') },
            { label: 'Finished', value: (r) => dateTime(r.finishedAt) },
          ],
          conn.nodes,
          {
            caption: `In file order · page ${rowsState.pageNo}`,
            empty: rowsState.outcome ? `No row is ${rowsState.outcome}.` : 'This job has no rows.',
            testid: 'bulk-rows',
            rowAttrs: (r) => ({ 'data-row': r.row, 'data-outcome': r.outcome }),
          },
        ),
        pager(conn.pageInfo, {
          onNext: (cursor) => {
            rowsState.after = cursor;
            rowsState.pageNo += 1;
            loadRows();
          },
          onFirst: rowsState.after
            ? () => {
                rowsState.after = null;
                rowsState.pageNo = 1;
                loadRows();
              }
            : null,
        }),
      );
    } catch (err) {
      mount(rowsBox, errorBox(err));
    }
  }

  mount(
    main,
    link('/bulk', '← Bulk jobs'),
    h('h1', {}, `Bulk job: ${jobTitle(job)}`),
    h(
      'section',
      { class: 'card' },
      h('div', { class: 'bulk-head' }, h('span', {}, 'Status: '), statusEl, ' ', liveEl),
      summaryEl,
      h('div', { class: 'bulk-progress' }, progressEl, h('span', {}, progressText, etaEl)),
      failureEl,
      actionsEl,
      actionsStatus,
    ),
    stats,
    h('section', { class: 'card' }, h('h2', {}, 'Details'), detailsEl),
    h(
      'section',
      { class: 'card' },
      h('h2', {}, 'Rows'),
      h(
        'div',
        { class: 'toolbar' },
        field('Outcome', outcomeFilter),
        h('button', { type: 'button', onclick: () => loadRows() }, 'Refresh'),
      ),
      rowsBox,
    ),
  );
  draw();
  // Followed live until its final status (also while awaiting confirmation: someone else may
  // confirm or cancel it).
  if (FINAL.includes(job.status)) liveEl.replaceChildren();
  else startLive();
  await loadRows();
  main.dataset.ready = 'bulk-job';
}
