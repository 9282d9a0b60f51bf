// Written as a frontend team would write it against the generated client: the
// names are the operation ids, the types are the schemas' own. `tsc --strict`
// must accept it, and run against the service it must get the answers below.
import { client } from "./client/client.gen";
import {
  createBooking,
  createTherapist,
  deleteBooking,
  getBooking,
  listBookings,
  login,
  readMe,
  register,
  updateBooking,
} from "./client/sdk.gen";
import type { BookingCreate, BookingRead, BookingUpdate } from "./client/types.gen";

// Node's own globals, without @types/node.
declare const process: { argv: string[]; exit(code: number): never };
const ok = { throwOnError: true } as const;

async function main(baseUrl: string): Promise<void> {
  client.setConfig({ baseUrl });
  const account = { email: "ts-client@example.com", password: "a-long-password" };
  await register({ body: account, ...ok });
  const { data: token } = await login({
    body: { username: account.email, password: account.password },
    ...ok,
  });
  client.setConfig({ auth: () => token.access_token });
  const { data: me } = await readMe(ok);

  const { data: therapist } = await createTherapist({ body: { name: "Ada" }, ...ok });
  const slot: BookingCreate = {
    therapist_id: therapist.id,
    starts_at: "2031-05-01T09:00:00Z",
    ends_at: "2031-05-01T10:00:00Z",
  };
  const { data: booked } = await createBooking({ body: slot, ...ok });
  const clash = await createBooking({ body: slot });
  const { data: listed } = await listBookings(ok);
  const later: BookingUpdate = { notes: "bring the forms", ends_at: "2031-05-01T10:30:00Z" };
  const { data: updated } = await updateBooking({
    path: { booking_id: booked.id },
    body: later,
    ...ok,
  });
  const { data: read }: { data: BookingRead } = await getBooking({
    path: { booking_id: booked.id },
    ...ok,
  });
  await deleteBooking({ path: { booking_id: booked.id }, ...ok });
  const gone = await getBooking({ path: { booking_id: booked.id } });

  console.log(
    JSON.stringify({
      me: me.email,
      owner: booked.owner_id === me.id,
      clash: clash.response.status,
      listed: listed.map((booking) => booking.id),
      booked: booked.id,
      updated: [updated.notes, updated.ends_at],
      read: read.notes,
      gone: gone.response.status,
    }),
  );
}

main(process.argv[2]).catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
