import crypto from 'node:crypto';

export const md5Of = (bytes: Uint8Array) => crypto.createHash('md5').update(bytes).digest('hex');
