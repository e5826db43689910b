# robust in a container: the image the shard workers and the merge of examples/ run.
#   docker build -t robust .
#   docker run --rm -v "$PWD/results:/results" robust eval --models zoo:fmnist-resnet20w8 --data sample --out /results --shard 0/2
FROM node:20-slim
WORKDIR /opt/robust
COPY . .
# npm ci also compiles (the package's prepare script); the optional native backends fetch
# libtensorflow when they can and are skipped when not (robust then runs on wasm).
RUN npm ci && npx tsc -p tsconfig.json
ENTRYPOINT ["node", "/opt/robust/bin/robust.js"]
