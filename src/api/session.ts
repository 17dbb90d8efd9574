/**
 * The dashboard's session (POST, GET and DELETE /v1/session): a token goes in once, a session
 * cookie comes back. The page (src/dashboard/app.js) reads these answers.
 */
import { Type, type Static } from 'typebox';
import { RoleSchema } from './auth.js';

/** POST /v1/session: the token to log in with. */
export const LoginRequestSchema = Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) });
export type LoginRequest = Static<typeof LoginRequestSchema>;

/** POST /v1/session: who the session is for, the token's name and role. */
export const LoginAnswerSchema = Type.Object({ name: Type.String(), role: RoleSchema });
export type LoginAnswer = Static<typeof LoginAnswerSchema>;

/** GET /v1/session: whether the page is logged in, and if so as whom (as LoginAnswer says). */
export const SessionAnswerSchema = Type.Object({ loggedIn: Type.Boolean(), name: Type.Optional(Type.String()), role: Type.Optional(RoleSchema) });
export type SessionAnswer = Static<typeof SessionAnswerSchema>;
