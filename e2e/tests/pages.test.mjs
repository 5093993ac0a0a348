// End-to-end tests of the web pages in headless Chromium against a real three-node
// `roomraft dev` cluster behind HAProxy. Every page visited is checked with axe-core and
// screenshotted into target/screenshots/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCluster, newPage, check, signIn, until, checked } from '../lib.mjs';

let c;
before(async () => { c = await startCluster(Number(process.env.ROOMRAFT_E2E_PORT || 30600)); });
after(async () => {
  if (c) await c.stop();
  console.log(`pages checked with axe and screenshotted: ${[...checked].sort().join(', ')}`);
});

/** The week view of `room` from this week on until a week with a free, bookable slot. */
async function weekWithFreeSlot(page, roomName) {
  await page.goto(`${c.url}/day`);
  const href = await page.getByRole('link', { name: roomName, exact: true }).first().getAttribute('href');
  const roomPath = href.split('?')[0];
  for (let w = 0; w < 12; w++) {
    const monday = new Date(Date.now() + (w + 1) * 7 * 86400000).toISOString().slice(0, 10);
    await page.goto(`${c.url}${roomPath}?date=${monday}`);
    if (await page.locator('td.free a.book').count() > 0) return roomPath;
  }
  throw new Error(`no free slot in ${roomName} in 12 weeks`);
}

test('sign-in refuses a wrong password with a clear message', async () => {
  const page = await newPage(c);
  const resp = await page.goto(`${c.url}/today`);
  assert.match(page.url(), /\/sign-in\?next=%2Ftoday/, 'a signed-out visitor is sent to sign in');
  // Security headers on every page.
  const h = resp.headers();
  assert.match(h['content-security-policy'], /default-src 'none'.*frame-ancestors 'none'/);
  assert.match(h['strict-transport-security'], /max-age=\d+/);
  assert.equal(h['x-content-type-options'], 'nosniff');
  await check(page, 'sign-in', assert);
  await page.getByLabel('School').fill('demo');
  await page.getByLabel('Username or email').fill('jpatel');
  await page.getByLabel('Password').fill('not-the-password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await assert.doesNotReject(page.getByRole('alert').filter({ hasText: 'invalid username or password' }).waitFor());
  await check(page, 'sign-in-failed', assert);
  await page.context().close();
});

test('staff book a free period, see it in the week grid, and the loser of a race reads the conflict', async () => {
  const jay = await newPage(c);
  const sade = await newPage(c);
  await signIn(jay, c, 'jpatel');
  await check(jay, 'today', assert);
  await signIn(sade, c, 'sokafor');
  const roomPath = await weekWithFreeSlot(jay, 'Room 101');
  await check(jay, 'week', assert);
  const bookHref = await jay.locator('td.free a.book').first().getAttribute('href');
  // Both open the same free slot's form; Jay books first.
  await jay.goto(`${c.url}${bookHref}`);
  await sade.goto(`${c.url}${bookHref}`);
  await check(jay, 'book', assert);
  const title = 'Revision <b>club</b>';
  await jay.getByLabel('Title').fill(title);
  await jay.getByRole('button', { name: 'Book', exact: true }).click();
  await jay.waitForURL(/\/week\?.*done=booked/);
  await jay.getByRole('status').filter({ hasText: 'Booked.' }).waitFor();
  // User text is shown as text, never as markup.
  const cell = jay.locator('td.busy', { hasText: title });
  assert.equal(await cell.count(), 1, 'the booking is in the week grid, escaped');
  assert.match(await cell.innerText(), /Jay Patel/, 'with who booked it');
  assert.equal(await jay.locator('td.busy b').count(), 0, 'no markup from the title');
  await check(jay, 'week-booked', assert);

  await sade.getByLabel('Title').fill('Year 9 catch-up');
  await sade.getByRole('button', { name: 'Book', exact: true }).click();
  const alert = sade.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.innerText(), /That slot is taken: it clashes with booking \d+ "Revision <b>club<\/b>"/);
  await check(sade, 'book-conflict', assert);
  await jay.goto(`${c.url}${roomPath}`);
  await jay.context().close();
  await sade.context().close();
});

test('a recurring booking is previewed with its clashes, then booked, then cancelled once and as a series', async () => {
  const page = await newPage(c);
  await signIn(page, c, 'sokafor');
  await page.goto(`${c.url}/book`);
  const library = await page.locator('#room option', { hasText: 'Library' }).getAttribute('value');
  await page.getByLabel('Room').selectOption(library);
  const first = new Date(Date.now() + 7 * 86400000);
  const until = new Date(first.getTime() + 35 * 86400000);
  await page.getByLabel('Date').fill(first.toISOString().slice(0, 10));
  await page.getByLabel('Period', { exact: true }).selectOption({ index: 1 });
  await page.getByLabel('Title').fill('Book club');
  await page.getByLabel('Every week, on the days below').check();
  await page.getByLabel('Until', { exact: true }).fill(until.toISOString().slice(0, 10));
  await page.getByRole('button', { name: 'Preview a weekly booking' }).click();
  await page.getByRole('heading', { name: /occurrences/ }).waitFor();
  const rows = await page.locator('section.preview tbody tr').count();
  assert.ok(rows >= 1, 'the preview lists the occurrences');
  await check(page, 'book-preview', assert);
  await page.getByLabel('Book the free dates and skip the clashes').check();
  await page.getByRole('button', { name: 'Confirm the recurring booking' }).click();
  await page.waitForURL(/\/my\/bookings\?done=series/);
  const series = page.locator('tbody tr', { hasText: 'Book club' });
  const booked = await series.count();
  assert.ok(booked >= 1, 'the occurrences are in My bookings');
  assert.match(await series.first().innerText(), /Repeats: .*weekly/);
  await check(page, 'my-bookings', assert);

  await series.first().getByRole('button', { name: /this one/ }).click();
  await page.waitForURL(/done=cancelled/);
  assert.equal(await page.locator('tbody tr', { hasText: 'Book club' }).count(), booked - 1);
  if (booked > 1) {
    await page.locator('tbody tr', { hasText: 'Book club' }).first()
      .getByRole('button', { name: /Cancel the series/ }).click();
    await page.waitForURL(/done=cancelled/);
    assert.equal(await page.locator('tbody tr', { hasText: 'Book club' }).count(), 0);
  }
  await page.context().close();
});

test('an admin creates a room and uploads a timetable, reading the error report first', async () => {
  const page = await newPage(c);
  await signIn(page, c, 'head');
  await page.goto(`${c.url}/admin`);
  await check(page, 'admin', assert);
  await page.getByRole('link', { name: 'Rooms', exact: true }).click();
  await page.getByLabel('Name').fill('Science Lab 9');
  await page.getByLabel('Category').fill('lab');
  await page.getByLabel('Places').fill('28');
  await page.getByRole('button', { name: 'Add room' }).click();
  await page.waitForURL(/done=room/);
  await page.getByRole('cell', { name: 'Science Lab 9' }).waitFor();
  await check(page, 'admin-rooms', assert);
  // A room name that exists already is refused with the field named.
  await page.getByLabel('Name').fill('Science Lab 9');
  await page.getByLabel('Category').fill('lab');
  await page.getByLabel('Places').fill('28');
  await page.getByRole('button', { name: 'Add room' }).click();
  await page.getByRole('alert').waitFor();

  await page.goto(`${c.url}/admin/timetable`);
  await page.getByLabel('CSV file').setInputFiles({ name: 'bad.csv', mimeType: 'text/csv',
    buffer: Buffer.from('room,day,period,subject,class,teacher\nScience Lab 9,Funday,P1,Chemistry,10C,Dr Rao\n') });
  await page.getByRole('button', { name: 'Upload' }).click();
  const report = page.getByRole('table', { name: 'Rows with problems' });
  await report.waitFor();
  assert.match(await report.innerText(), /2\s+day\s+use Mon to Sun/);
  await check(page, 'admin-timetable-errors', assert);
  await page.getByLabel('CSV file').setInputFiles({ name: 'good.csv', mimeType: 'text/csv',
    buffer: Buffer.from('room,day,period,subject,class,teacher\nScience Lab 9,Tue,P2,Chemistry,10C,Dr Rao\n') });
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.getByRole('status').filter({ hasText: 'Imported 1 lessons.' }).waitFor();
  // The lesson shows in the new room's week during term time.
  await page.goto(`${c.url}/day`);
  await page.getByRole('link', { name: 'Science Lab 9' }).click();
  await until('a week with the lesson', async () => {
    if (await page.locator('td.busy', { hasText: 'Lesson: Chemistry, 10C, Dr Rao' }).count() > 0) return true;
    await page.getByRole('link', { name: 'Next week →' }).click();
    return false;
  }, 60000);
  for (const [path, name] of [['/admin/users', 'admin-users'], ['/admin/calendar', 'admin-calendar'],
    ['/admin/audit', 'admin-audit'], ['/admin/approvals', 'admin-approvals'],
    ['/admin/site', 'admin-site'], ['/admin/analytics', 'admin-analytics'],
    ['/account/password', 'password'], ['/day', 'day'], ['/no/such/page', 'not-found']]) {
    await page.goto(`${c.url}${path}`);
    await check(page, name, assert);
  }
  await page.context().close();
});

test('a public visitor sends an enquiry and the admin sees it', async () => {
  const visitor = await newPage(c, { phone: true });
  await visitor.goto(`${c.url}/v/demo`);
  await visitor.getByRole('heading', { name: 'Hire facilities at Demo School' }).waitFor();
  await check(visitor, 'venue-home', assert);
  await visitor.getByRole('link', { name: 'Main Hall', exact: true }).click();
  await visitor.getByRole('table', { name: /When Main Hall is free/ }).waitFor();
  const text = await visitor.locator('main').innerText();
  assert.doesNotMatch(text, /Jay Patel|Revision|Lesson:/, 'no private details on the public site');
  await check(visitor, 'venue-facility', assert);
  await visitor.getByRole('link', { name: 'Enquire about Main Hall' }).click();
  const day = new Date(Date.now() + 21 * 86400000).toISOString().slice(0, 10);
  await visitor.getByLabel('Your name').fill('Priya Lettings');
  await visitor.getByLabel('Email').fill('not-an-email');
  await visitor.getByLabel('From').fill(day);
  await visitor.getByLabel('What would you like?').fill('A netball club on Saturday mornings, 20 players.');
  await visitor.getByLabel('Email').evaluate((e) => e.setAttribute('type', 'text')); // past the browser's own check
  await visitor.getByRole('button', { name: 'Send enquiry' }).click();
  await visitor.getByText('must be an email address').first().waitFor();
  await check(visitor, 'venue-enquiry-error', assert);
  await visitor.getByLabel('Email').fill('priya@example.org');
  await visitor.getByRole('button', { name: 'Send enquiry' }).click();
  await visitor.getByRole('heading', { name: 'Thank you, Priya Lettings' }).waitFor();
  await check(visitor, 'venue-thanks', assert);
  await visitor.context().close();

  const admin = await newPage(c);
  await signIn(admin, c, 'head');
  await admin.goto(`${c.url}/admin/enquiries`);
  const enquiry = admin.locator('article', { hasText: 'Priya Lettings' });
  await enquiry.waitFor();
  assert.match(await enquiry.innerText(), /Main Hall[\s\S]*priya@example\.org[\s\S]*netball club/);
  await check(admin, 'admin-enquiries', assert);
  await enquiry.getByRole('button', { name: /Mark as dealt with/ }).click();
  await admin.waitForURL(/done=enquiry/);
  assert.equal(await admin.locator('article', { hasText: 'Priya Lettings' }).count(), 0);
  await admin.context().close();
});

test('the pages work on a phone', async () => {
  const page = await newPage(c, { phone: true });
  await signIn(page, c, 'site');
  await check(page, 'today-phone', assert);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `no sideways scrolling of the page itself (${width}px)`);
  await page.context().close();
});

test('an evening letting and a Saturday club show in every grid, on a phone too, and viewers get no Book links', async () => {
  const auth = { authorization: `Bearer ${c.adminToken}` };
  const rooms = await (await c.api.get(`${c.url}/api/v1/rooms`, { headers: auth })).json();
  const hall = rooms.find((r) => r.name === 'Main Hall');
  // A Monday some weeks ahead, and its Saturday.
  const d = new Date(Date.now() + 35 * 86400000);
  while (d.getUTCDay() !== 1) d.setUTCDate(d.getUTCDate() + 1);
  const monday = d.toISOString().slice(0, 10);
  const saturday = new Date(d.getTime() + 5 * 86400000).toISOString().slice(0, 10);
  for (const [date, from, to, title] of [[monday, '18:30', '21:00', 'Evening drama letting'],
    [saturday, '10:00', '12:00', 'Saturday football club']]) {
    const r = await c.api.post(`${c.url}/api/v1/bookings`, { headers: auth,
      data: { room_id: hall.id, date, start_time: from, end_time: to, title } });
    assert.equal(r.status(), 201, await r.text());
  }
  const page = await newPage(c, { phone: true });
  await signIn(page, c, 'jpatel');
  await page.goto(`${c.url}/rooms/${hall.id}/week?date=${monday}`);
  for (const title of ['Evening drama letting', 'Saturday football club']) {
    const cell = page.locator('td.busy', { hasText: title });
    await cell.scrollIntoViewIfNeeded();
    assert.ok(await cell.isVisible(), `${title} is in the week grid`);
  }
  assert.equal(await page.getByText('No such period').count(), 0);
  await check(page, 'week-other-times-phone', assert);
  await page.goto(`${c.url}/day?date=${monday}`);
  await page.locator('td.busy', { hasText: 'Evening drama letting' }).waitFor();
  await page.context().close();
  const viewer = await newPage(c);
  await signIn(viewer, c, 'site');
  await viewer.goto(`${c.url}/rooms/${hall.id}/week?date=${monday}`);
  await viewer.locator('td.busy', { hasText: 'Evening drama letting' }).waitFor();
  assert.equal(await viewer.locator('a.book').count(), 0, 'a view-only user is offered Book links');
  await viewer.context().close();
});

test('a signed-in user keeps working when the leader is SIGKILLed', async () => {
  const page = await newPage(c);
  await signIn(page, c, 'tpe');
  const roomPath = await weekWithFreeSlot(page, 'Drama Studio');
  const leader = await c.leader();
  c.kill(leader);
  // The next requests go through HAProxy to the surviving nodes; the session holds.
  const links = page.locator('td.free a.book');
  const href = await links.first().getAttribute('href');
  await page.goto(`${c.url}${href}`);
  await page.getByLabel('Title').fill('Rehearsal after failover');
  await page.getByRole('button', { name: 'Book', exact: true }).click();
  await page.waitForURL(/done=booked/, { timeout: 30000 });
  await page.locator('td.busy', { hasText: 'Rehearsal after failover' }).waitFor();
  await page.goto(`${c.url}/my/bookings`);
  await page.locator('tbody tr', { hasText: 'Rehearsal after failover' }).waitFor();
  assert.ok(roomPath);
  await page.context().close();
});
